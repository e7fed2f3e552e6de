"""POST /api/v1/account/reset and /api/v1/watchlist over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cnop_app.services import admin
from tests.support.admin_api import api_with_admin_routes, audit_rows
from tests.support.helpers import register_and_login
from tests.support.trading_fixtures import add_asset, fund

V1 = "/api/v1"


@pytest.fixture
def api(any_db: str) -> Iterator[TestClient]:
    add_asset("BTC", "100")
    add_asset("ETH", "10")
    with TestClient(api_with_admin_routes(), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def bob(api: TestClient) -> dict[str, str]:
    return register_and_login(api, "bob_0001")


def test_anonymous_is_401(api: TestClient) -> None:
    assert api.post(f"{V1}/account/reset", json={"starting_cash": "1"}).status_code == 401
    assert api.get(f"{V1}/watchlist").status_code == 401
    assert api.put(f"{V1}/watchlist/BTC").status_code == 401
    assert api.delete(f"{V1}/watchlist/BTC").status_code == 401


def test_reset_over_http(api: TestClient, bob: dict[str, str]) -> None:
    fund("bob_0001", "1000")
    buy = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "2"}
    assert api.post(f"{V1}/orders", json=buy, headers=bob).status_code == 201
    limit = {"order_type": "limit_buy", "asset_id": "ETH", "quantity": "1", "price": "5"}
    assert api.post(f"{V1}/orders", json=limit, headers=bob).status_code == 201
    response = api.post(
        f"{V1}/account/reset", json={"starting_cash": "25000.00"}, headers={**bob, "X-Request-ID": "reset-1"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["starting_cash"] == "25000.00" and body["cash_after"] == "25000.00" and body["cancelled_orders"] == 1
    assert body["closed_positions"] == [
        {
            "asset_id": "BTC",
            "quantity": "2",
            "price": "100",
            "proceeds": "200.00",
            "order_id": body["closed_positions"][0]["order_id"],
        }
    ]
    balance = api.get(f"{V1}/balance", headers=bob).json()
    assert balance["current_balance"] == "25000.00" and balance["held_balance"] == "0.00"
    assert api.get(f"{V1}/portfolio", headers=bob).json()["assets"] == []
    row = audit_rows("account_reset")[0]
    assert row["request_id"] == "reset-1" and row["ip"] == "testclient"
    assert admin.verify_ledger().ok
    assert api.post(f"{V1}/account/reset", json={"starting_cash": 500}, headers=bob).json()["cash_after"] == "500.00"


@pytest.mark.parametrize(
    "body",
    [{}, {"starting_cash": "-1"}, {"starting_cash": "1000000.01"}, {"starting_cash": True}, {"starting_cash": "1.001"}],
)
def test_bad_starting_cash_is_422(api: TestClient, bob: dict[str, str], body: dict) -> None:
    response = api.post(f"{V1}/account/reset", json=body, headers=bob)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "starting_cash"
    assert not audit_rows("account_reset")


def test_watchlist_over_http(api: TestClient, bob: dict[str, str]) -> None:
    assert api.get(f"{V1}/watchlist", headers=bob).json() == {"data": []}
    starred = api.put(f"{V1}/watchlist/eth", headers=bob)
    assert starred.status_code == 200 and starred.json()["changed"] is True
    assert starred.json()["message"] == "ETH added to the watchlist"
    assert api.put(f"{V1}/watchlist/ETH", headers=bob).json()["changed"] is False
    api.put(f"{V1}/watchlist/BTC", headers=bob)
    items = api.get(f"{V1}/watchlist", headers=bob).json()["data"]
    assert [i["asset_id"] for i in items] == ["ETH", "BTC"] and items[1]["price_usd"] == 100
    assert api.put(f"{V1}/watchlist/NOPE", headers=bob).status_code == 404
    bad = api.put(f"{V1}/watchlist/no-such!", headers=bob)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "asset_id"
    removed = api.delete(f"{V1}/watchlist/ETH", headers=bob)
    assert removed.status_code == 200 and removed.json()["changed"] is True
    assert [i["asset_id"] for i in removed.json()["data"]] == ["BTC"]
    assert api.delete(f"{V1}/watchlist/ETH", headers=bob).json()["changed"] is False
    other = register_and_login(api, "eve_0001")
    assert api.get(f"{V1}/watchlist", headers=other).json() == {"data": []}
