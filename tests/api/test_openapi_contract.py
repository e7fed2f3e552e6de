"""/openapi.json documents every response, and real responses match what it documents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from cnop_app.api.schemas.market import AssetDetailOut, AssetHistoryOut, AssetSummaryOut, BreakerOut, MarketStatusOut
from cnop_app.services import activity, market
from tests.support.helpers import register_and_login, user_payload
from tests.support.trading_fixtures import add_asset

JSON = "application/json"
ERROR_REF = "#/components/schemas/ErrorResponse"
# Plain-text bodies: the Prometheus exposition and the ledger export.
TEXT_BODIES = {
    ("get", "/metrics"): "text/plain",
    ("get", "/api/v1/balance/transactions/export"): "text/csv",
    ("get", "/api/v1/admin/audit.csv"): "text/csv",
}


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def api(client: TestClient) -> Iterator[TestClient]:
    market.seed_from_snapshot()
    activity.reset()
    yield client
    activity.reset()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method, path, op


def test_every_operation_documents_a_success_body(spec: dict[str, Any]) -> None:
    seen = set()
    for method, path, op in operations(spec):
        seen.add((method, path))
        success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert success, f"{method} {path}: no 2xx response"
        for code, response in success.items():
            content = response.get("content")
            assert content, f"{method} {path} {code}: no body documented"
            if (method, path) in TEXT_BODIES:
                assert content == {TEXT_BODIES[method, path]: {"schema": {"type": "string"}}}, (method, path)
            else:
                assert list(content) == [JSON], (method, path, code)
                assert content[JSON]["schema"].get("$ref", "").startswith("#/components/schemas/"), (method, path)
    assert set(TEXT_BODIES) <= seen
    assert ("get", "/health") in seen


def test_errors_are_documented_with_the_shared_error_body(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        for code, response in op["responses"].items():
            if code.startswith("4"):
                assert response["content"][JSON]["schema"] == {"$ref": ERROR_REF}, (method, path, code)
        if op.get("security"):
            assert "401" in op["responses"], f"{method} {path}: authenticated but 401 not documented"
        if "requestBody" in op:
            assert {"413", "422"} <= set(op["responses"]), f"{method} {path}: body errors not documented"
    # FastAPI's own 422 shape is not what the API answers: no operation may fall back to it.
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "429" in spec["paths"]["/api/v1/auth/login"]["post"]["responses"]


def check(spec: dict[str, Any], method: str, path: str, response: Any, status: int) -> dict[str, Any]:
    """Assert the status and validate the JSON body against the schema documented for it."""
    assert response.status_code == status, response.text
    documented = spec["paths"][path][method]["responses"][str(status)]
    schema = {**documented["content"][JSON]["schema"], "components": spec["components"]}
    body = response.json()
    jsonschema.Draft202012Validator(schema).validate(body)
    return body


def test_real_responses_match_their_documented_schema(spec: dict[str, Any], api: TestClient) -> None:
    add_asset("TINY", "0.00001172")
    headers = register_and_login(api, "carol_01")
    v1 = "/api/v1"

    check(spec, "get", "/health", api.get("/health"), 200)
    check(spec, "get", f"{v1}/auth/profile", api.get(f"{v1}/auth/profile", headers=headers), 200)
    check(spec, "get", f"{v1}/auth/profile", api.get(f"{v1}/auth/profile"), 401)
    check(spec, "get", f"{v1}/auth/sessions", api.get(f"{v1}/auth/sessions", headers=headers), 200)
    check(spec, "post", f"{v1}/auth/register", api.post(f"{v1}/auth/register", json=user_payload("carol_01")), 409)
    check(spec, "post", f"{v1}/auth/register", api.post(f"{v1}/auth/register", json={"username": 1}), 422)

    deposit = api.post(f"{v1}/balance/deposit", json={"amount": "1000"}, headers=headers)
    check(spec, "post", f"{v1}/balance/deposit", deposit, 201)
    check(spec, "get", f"{v1}/balance", api.get(f"{v1}/balance", headers=headers), 200)
    check(spec, "get", f"{v1}/balance/transactions", api.get(f"{v1}/balance/transactions", headers=headers), 200)

    buy = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"}
    placed = check(spec, "post", f"{v1}/orders", api.post(f"{v1}/orders", json=buy, headers=headers), 201)
    limit = {"order_type": "limit_buy", "asset_id": "ETH", "quantity": "0.01", "price": "10"}
    pending = api.post(f"{v1}/orders", json=limit, headers=headers).json()["data"]
    cancel = f"{v1}/orders/{{order_id}}/cancel"
    check(spec, "post", cancel, api.post(f"{v1}/orders/{pending['order_id']}/cancel", headers=headers), 200)
    check(spec, "post", cancel, api.post(f"{v1}/orders/{pending['order_id']}/cancel", headers=headers), 409)
    one = api.get(f"{v1}/orders/{placed['data']['order_id']}", headers=headers)
    check(spec, "get", f"{v1}/orders/{{order_id}}", one, 200)
    check(spec, "get", f"{v1}/orders/{{order_id}}", api.get(f"{v1}/orders/{uuid.uuid4()}", headers=headers), 404)
    check(spec, "get", f"{v1}/orders/{{order_id}}", api.get(f"{v1}/orders/missing", headers=headers), 422)
    check(spec, "get", f"{v1}/orders", api.get(f"{v1}/orders", headers=headers), 200)
    fills = api.get(f"{v1}/assets/BTC/transactions", headers=headers)
    check(spec, "get", f"{v1}/assets/{{asset_id}}/transactions", fills, 200)
    check(spec, "get", f"{v1}/portfolio", api.get(f"{v1}/portfolio", headers=headers), 200)
    check(spec, "get", f"{v1}/balance/asset/{{asset_id}}", api.get(f"{v1}/balance/asset/BTC", headers=headers), 200)

    check(spec, "get", f"{v1}/inventory/assets", api.get(f"{v1}/inventory/assets?limit=250"), 200)
    detail = check(spec, "get", f"{v1}/inventory/assets/{{asset_id}}", api.get(f"{v1}/inventory/assets/BTC"), 200)
    assert isinstance(detail["data"]["price_usd"], float) and isinstance(detail["data"]["market_cap"], int)
    history = api.get(f"{v1}/inventory/assets/BTC/history?range=7d")
    check(spec, "get", f"{v1}/inventory/assets/{{asset_id}}/history", history, 200)
    check(spec, "get", f"{v1}/market/status", api.get(f"{v1}/market/status"), 200)

    # Asset figures stay JSON numbers written the way Python writes floats.
    assert '"price_usd":1.172e-05' in api.get(f"{v1}/inventory/assets/TINY").text


def test_market_models_carry_every_key_of_the_service(api: TestClient) -> None:
    # The market service hands dicts; a key the model does not declare would be dropped silently.
    listed = market.list_assets(limit=1)["data"][0]
    assert list(listed) == list(AssetSummaryOut.model_fields)
    assert list(market.get_asset("BTC")) == list(AssetDetailOut.model_fields)
    assert list(market.asset_history("BTC", "24h")) == list(AssetHistoryOut.model_fields)
    status = market.market_status()
    assert list(status) == list(MarketStatusOut.model_fields)
    assert list(status["breaker"]) == list(BreakerOut.model_fields)


def test_metrics_is_plain_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
