"""Regression tests for the security review's API findings: paging overflow (A11), /metrics and the
detailed /health behind the metrics token (A12), CORS limited to the public URL (A13), malformed order
ids (A15), and typed amounts that only look like numbers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from reflex.app import App
from reflex_base.config import get_config

from cnop_app.api import create_api
from cnop_app.config import ServerSettings
from cnop_app.domain.paging import MAX_OFFSET
from cnop_app.services import health
from tests.api.conftest import METRICS_TOKEN
from tests.support.trading_fixtures import add_asset

HUGE = "10000000000000000000"  # past a 64-bit SQL integer: was an OverflowError and a 500


def field_errors(response: Any) -> list[str]:
    return [error["field"] for error in response.json()["detail"]]


@pytest.mark.parametrize(
    "path", ["/api/v1/balance/transactions", "/api/v1/orders", "/api/v1/assets/{asset_id}/transactions"]
)
def test_a_huge_offset_is_a_422_naming_the_field(client: TestClient, auth_headers: dict[str, str], path: str) -> None:
    url = path.replace("{asset_id}", "BTC")
    response = client.get(f"{url}?offset={HUGE}", headers=auth_headers)
    assert response.status_code == 422 and field_errors(response) == ["offset"]
    assert client.get(f"{url}?offset={MAX_OFFSET + 1}", headers=auth_headers).status_code == 422
    assert client.get(f"{url}?offset={MAX_OFFSET}", headers=auth_headers).status_code in (200, 404)
    # Declared on the route, so /openapi.json (and the fuzz test) knows the bound.
    [offset] = [
        p for p in client.get("/openapi.json").json()["paths"][path]["get"]["parameters"] if p["name"] == "offset"
    ]
    assert offset["schema"]["maximum"] == MAX_OFFSET


def test_a_malformed_order_id_is_422_and_an_unknown_one_404(client: TestClient, auth_headers: dict[str, str]) -> None:
    for bad in ("invalid@", "nope", "1234"):
        response = client.get(f"/api/v1/orders/{bad}", headers=auth_headers)
        assert response.status_code == 422 and field_errors(response) == ["order_id"], bad
        assert client.post(f"/api/v1/orders/{bad}/cancel", headers=auth_headers).status_code == 422
    assert client.get(f"/api/v1/orders/{uuid.uuid4()}", headers=auth_headers).status_code == 404
    assert client.post(f"/api/v1/orders/{uuid.uuid4()}/cancel", headers=auth_headers).status_code == 404
    assert client.get("/api/v1/orders/invalid@").status_code == 401  # no token: still 401 first


def test_metrics_need_the_metrics_token_when_one_is_set(
    client: TestClient, auth_headers: dict[str, str], metrics_headers: dict[str, str]
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}, auth_headers):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer" and response.json() == {"detail": "Not authenticated"}
    allowed = client.get("/metrics", headers=metrics_headers)
    assert allowed.status_code == 200 and "cnop_http_requests_total" in allowed.text
    assert client.get("/docs").status_code == 200  # the docs stay public


def test_health_is_terse_without_the_metrics_token(
    client: TestClient, metrics_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = client.get("/health", headers=headers)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    detailed = client.get("/health", headers=metrics_headers).json()
    assert detailed["status"] == "ok" and detailed["components"]["database"]["status"] == "ok"
    # A component down: 503 for everyone (probes and proxies act on the status code alone).
    monkeypatch.setitem(health._checks, "broken", lambda: {"status": "down"})
    assert client.get("/health").status_code == 503 and client.get("/health").json() == {"status": "down"}
    down = client.get("/health", headers=metrics_headers)
    assert down.status_code == 503 and down.json()["components"]["broken"] == {"status": "down"}


def test_health_without_a_configured_token_shows_no_details(client: TestClient) -> None:
    assert client.get("/health", headers={"Authorization": "Bearer anything"}).json() == {"status": "ok"}
    assert client.get("/metrics").status_code == 200  # no token configured: /metrics as before


def test_cors_answers_only_the_public_urls_origin(cnop_env: object) -> None:
    # rxconfig.py hands Reflex the public URL's origin; Reflex adds its CORS middleware to our API this way.
    config = get_config()
    allowed = config.cors_allowed_origins
    assert list(allowed) == ServerSettings(public_url=config.api_url).cors_origins
    api = create_api()
    App._add_cors(api)
    with TestClient(api, cookies={"cnop_token": "x"}) as client:
        foreign = client.get("/api/v1/inventory/assets", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 200 and "access-control-allow-origin" not in foreign.headers
        preflight = client.options(
            "/api/v1/balance",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        own = client.get("/api/v1/inventory/assets", headers={"Origin": allowed[0]})
        assert own.headers["access-control-allow-origin"] == allowed[0]
        assert own.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize("amount", ["１０", "1_0", "1e1", "+10", "1,0", "١٠"])
def test_amounts_that_only_look_like_numbers_are_refused(
    client: TestClient, auth_headers: dict[str, str], amount: str
) -> None:
    response = client.post("/api/v1/balance/deposit", json={"amount": amount}, headers=auth_headers)
    assert response.status_code == 422 and field_errors(response) == ["amount"]
    assert client.get("/api/v1/balance", headers=auth_headers).json()["current_balance"] == "0.00"


def test_order_quantities_and_prices_take_ascii_digits_only(client: TestClient, auth_headers: dict[str, str]) -> None:
    add_asset("RLX", "2")
    assert client.post("/api/v1/balance/deposit", json={"amount": "1,000"}, headers=auth_headers).status_code == 201
    order = {"order_type": "limit_buy", "asset_id": "RLX", "quantity": "1", "price": "1"}
    for field, value in (("quantity", "１"), ("quantity", "1_0"), ("price", "1_0"), ("price", "１")):
        response = client.post("/api/v1/orders", json={**order, field: value}, headers=auth_headers)
        assert response.status_code == 422 and field_errors(response) == [field], (field, value)
    assert client.post("/api/v1/orders", json={**order, "quantity": 1.5}, headers=auth_headers).status_code == 201


# Found by the schemathesis fuzz (tests/api/test_schemathesis.py).
def test_a_known_path_with_another_method_is_405_listing_the_methods(client: TestClient) -> None:
    for method, path, allowed in (
        ("PUT", "/api/v1/auth/register", "POST"),
        ("DELETE", "/api/v1/balance", "GET"),
        ("OPTIONS", "/api/v1/auth/profile", "GET, PUT"),
        ("TRACE", "/api/v1/auth/login", "POST"),
    ):
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed and response.json() == {"detail": "Method Not Allowed"}
    assert client.put("/api/v1/nowhere").status_code == 404


def test_a_body_that_is_not_utf8_is_a_422_naming_the_body(client: TestClient, auth_headers: dict[str, str]) -> None:
    headers = {**auth_headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/balance/deposit", content=b'{"amount": "\xff"}', headers=headers)
    assert response.status_code == 422 and field_errors(response) == ["body"]
