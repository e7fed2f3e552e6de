"""REST contract of the catalogue and market status (the reference system's shapes), through the real FastAPI app."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cnop_app.config import reset_settings
from cnop_app.db import dispose_engines, write_session
from cnop_app.models import Asset
from cnop_app.services import activity, market

LIST_KEYS = {
    "asset_id",
    "name",
    "description",
    "category",
    "price_usd",
    "is_active",
    "symbol",
    "image",
    "market_cap_rank",
    "price_change_percentage_24h",
    "market_cap",
    "total_volume_24h",
}
DETAIL_KEYS = LIST_KEYS | {
    "availability_status",
    "price_change_24h",
    "price_change_percentage_7d",
    "price_change_percentage_30d",
    "high_24h",
    "low_24h",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "ath",
    "ath_change_percentage",
    "ath_date",
    "atl",
    "atl_change_percentage",
    "atl_date",
    "last_updated",
    "sparkline_7d",
}


@pytest.fixture
def api(client: TestClient) -> Iterator[TestClient]:
    market.seed_from_snapshot()
    activity.reset()
    yield client
    activity.reset()


def test_list_assets_contract(api: TestClient) -> None:
    response = api.get("/api/v1/inventory/assets")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"data", "total_count", "active_count"}
    assert len(body["data"]) == 50 and body["total_count"] >= 50 and body["active_count"] == body["total_count"]
    first = body["data"][0]
    assert LIST_KEYS <= set(first)  # every key present, null when unknown
    assert first["asset_id"] == first["symbol"] == "BTC" and first["is_active"] is True
    assert isinstance(first["price_usd"], float | int) and isinstance(first["market_cap"], int)
    assert isinstance(first["price_change_percentage_24h"], float)
    ranks = [a["market_cap_rank"] for a in body["data"]]
    assert ranks == sorted(ranks)
    assert len(api.get("/api/v1/inventory/assets?limit=3").json()["data"]) == 3
    assert len(api.get("/api/v1/inventory/assets?limit=250").json()["data"]) == body["total_count"]


@pytest.mark.parametrize("query", ["limit=0", "limit=251", "limit=abc", "active_only=maybe"])
def test_list_assets_rejects_bad_parameters(api: TestClient, query: str) -> None:
    response = api.get(f"/api/v1/inventory/assets?{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] in ("limit", "active_only")


def _deactivate_directly(asset_id: str) -> None:
    """Straight in the database, without the market version bump that an admin change makes."""
    with write_session() as session:
        row = session.get(Asset, asset_id)
        assert row is not None
        row.is_active = False
        session.add(row)


def test_active_only_filter(api: TestClient) -> None:
    _deactivate_directly("DOGE")
    active = api.get("/api/v1/inventory/assets?limit=250").json()
    everything = api.get("/api/v1/inventory/assets?limit=250&active_only=false").json()
    assert "DOGE" not in {a["asset_id"] for a in active["data"]}
    assert "DOGE" in {a["asset_id"] for a in everything["data"]}
    assert active["active_count"] == active["total_count"] - 1
    detail = api.get("/api/v1/inventory/assets/DOGE").json()["data"]
    assert detail["availability_status"] == "unavailable" and detail["is_active"] is False


def test_the_cached_asset_list_is_per_database(
    api: TestClient, tmp_path: Path, migrated_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two databases seeded from the same snapshot hold the same market status; DOGE is inactive in
    # the second only. Within one second the list must still come from the database it is asked of.
    assert "DOGE" in {a["asset_id"] for a in api.get("/api/v1/inventory/assets?limit=250").json()["data"]}
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(migrated_template, second / "cnop.db")
    monkeypatch.setenv("CNOP_DATA_DIR", str(second))
    reset_settings()
    dispose_engines()
    market.seed_from_snapshot()
    _deactivate_directly("DOGE")
    active = api.get("/api/v1/inventory/assets?limit=250").json()
    assert "DOGE" not in {a["asset_id"] for a in active["data"]}
    assert active["active_count"] == active["total_count"] - 1


def test_asset_detail_contract(api: TestClient) -> None:
    response = api.get("/api/v1/inventory/assets/%20eth%20")  # trimmed and upper-cased
    assert response.status_code == 200
    data = response.json()["data"]
    assert DETAIL_KEYS <= set(data)
    assert data["asset_id"] == "ETH" and data["availability_status"] == "available"
    assert data["max_supply"] is None  # null, not missing
    assert len(data["sparkline_7d"]) == 168 and all(isinstance(p, float | int) for p in data["sparkline_7d"])
    assert data["ath_date"].startswith("2025-08-24")


@pytest.mark.parametrize(("asset_id", "status"), [("BT-C", 422), ("ABCDEFGHIJK", 422), ("ZZZZ", 404)])
def test_asset_detail_errors(api: TestClient, asset_id: str, status: int) -> None:
    response = api.get(f"/api/v1/inventory/assets/{asset_id}")
    assert response.status_code == status
    assert "detail" in response.json()


def test_history_endpoint(api: TestClient) -> None:
    response = api.get("/api/v1/inventory/assets/btc/history?range=7d")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["asset_id"] == "BTC" and data["range"] == "7d" and len(data["points"]) >= 168
    assert set(data["points"][0]) == {"at", "price"} and isinstance(data["points"][0]["price"], float | int)
    assert api.get("/api/v1/inventory/assets/BTC/history").json()["data"]["range"] == "24h"
    assert api.get("/api/v1/inventory/assets/BTC/history?range=1y").status_code == 422
    assert api.get("/api/v1/inventory/assets/NOPE/history?range=24h").status_code == 404


def test_market_status_health_and_metrics(api: TestClient, metrics_headers: dict[str, str]) -> None:
    market.refresh_prices()
    status = api.get("/api/v1/market/status")
    assert status.status_code == 200
    body = status.json()
    assert body["source"] == "snapshot" and body["stale"] is False and body["as_of"]
    assert body["breaker"]["state"] == "closed" and body["mode"] in ("active", "idle")
    health = api.get("/health", headers=metrics_headers).json()
    assert health["components"]["market"]["status"] == "ok"
    assert health["components"]["activity"]["mode"] == "active"  # the status request was activity
    metrics = api.get("/metrics", headers=metrics_headers).text
    for name in (
        'cnop_market_refresh_total{outcome="ok"}',
        "cnop_market_refresh_duration_seconds_bucket",
        "cnop_market_last_success_timestamp_seconds",
        "cnop_market_refresh_interval_seconds",
        "cnop_market_breaker_state",
        "cnop_active_users",
        "cnop_app_active",
    ):
        assert name in metrics, name


def test_requests_are_recorded_by_route_template(api: TestClient) -> None:
    for asset_id in ("BTC", "ETH", "SOL", "NOPE"):
        api.get(f"/api/v1/inventory/assets/{asset_id}")
    routes = activity.snapshot()["routes"]
    # One bounded label (the route template as the middleware reports it), never raw paths.
    [key] = [k for k in routes if k.endswith("/inventory/assets/{asset_id}")]
    assert key.startswith("GET ") and routes[key]["count"] == 4
    assert not any("BTC" in k for k in routes)
    metrics = api.get("/metrics").text
    assert '/inventory/assets/{asset_id}"' in metrics and "/inventory/assets/BTC" not in metrics
