"""/api/v1/admin over HTTP: 401 without a token, 403 for customers, 422 naming the field, audit rows
(actor, target, reason, IP, request id) and outbox rows, on SQLite and PostgreSQL; /openapi.json
documents every admin route and the real answers match it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from cnop_app.config import reset_settings
from cnop_app.services import audit, market, trading
from tests.support.admin_api import api_with_admin_routes, audit_rows, login_headers, make_admin, outbox_entities
from tests.support.helpers import register_and_login
from tests.support.trading_fixtures import add_asset, fund

V1 = "/api/v1"
JSON = "application/json"
REASON = {"reason": "test"}

# Every admin endpoint with a valid request (the path's user is "bob_0001", its asset BTC).
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("get", "/admin/users", None),
    ("get", "/admin/users/bob_0001", None),
    ("post", "/admin/users/bob_0001/disable", REASON),
    ("post", "/admin/users/bob_0001/enable", REASON),
    ("post", "/admin/users/bob_0001/sign-out", REASON),
    ("put", "/admin/users/bob_0001/role", {"role": "admin", "reason": "r"}),
    ("post", "/admin/users/bob_0001/adjustments", {"amount": "5", "reason": "r"}),
    ("get", "/admin/assets", None),
    ("put", "/admin/assets/BTC", {"is_active": False, "reason": "r"}),
    ("post", "/admin/market/refresh", REASON),
    ("get", "/admin/orders", None),
    ("post", "/admin/orders/some-order/cancel", REASON),
    ("get", "/admin/audit", None),
    ("get", "/admin/audit.csv", None),
    ("get", "/admin/system", None),
]


@pytest.fixture
def api(any_db: str) -> Iterator[TestClient]:
    add_asset("BTC", "100")
    add_asset("ETH", "10")
    with TestClient(api_with_admin_routes(), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def admin_headers(api: TestClient) -> dict[str, str]:
    make_admin("admin_01")
    return login_headers(api, "admin_01")


@pytest.fixture
def bob(api: TestClient) -> dict[str, str]:
    return register_and_login(api, "bob_0001")


def call(client: TestClient, method: str, path: str, body: dict[str, Any] | None, **kwargs: Any) -> Any:
    if body is None:
        return client.request(method.upper(), V1 + path, **kwargs)
    return client.request(method.upper(), V1 + path, json=body, **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_anonymous_gets_401_and_customers_403(
    api: TestClient, bob: dict[str, str], method: str, path: str, body: dict[str, Any] | None
) -> None:
    anonymous = call(api, method, path, body)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    forged = call(api, method, path, body, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    customer = call(api, method, path, body, headers=bob)
    assert customer.status_code == 403 and customer.json() == {"detail": "Admin role required"}
    assert not [r for r in audit_rows() if r["event_type"].startswith("admin_")]
    assert market.get_asset("BTC")["is_active"]


BAD_INPUT: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("get", "/admin/users?limit=0", None, "limit"),
    ("get", "/admin/users?offset=-1", None, "offset"),
    ("get", "/admin/users?sort=password_hash", None, "sort"),
    ("get", "/admin/users?query=" + "x" * 101, None, "query"),
    ("get", "/admin/users/x", None, "username"),
    ("get", "/admin/users/bob_0001?ledger_limit=501", None, "ledger_limit"),
    ("post", "/admin/users/bob_0001/disable", {}, "reason"),
    ("post", "/admin/users/bob_0001/disable", {"reason": "  "}, "reason"),
    ("post", "/admin/users/bob_0001/enable", {"reason": 5}, "reason"),
    ("post", "/admin/users/bob_0001/sign-out", {"reason": "x" * 501}, "reason"),
    ("put", "/admin/users/bob_0001/role", {"role": "root", "reason": "r"}, "role"),
    ("put", "/admin/users/bob_0001/role", {"role": "admin"}, "reason"),
    ("post", "/admin/users/bob_0001/adjustments", {"amount": "0", "reason": "r"}, "amount"),
    ("post", "/admin/users/bob_0001/adjustments", {"amount": "1.001", "reason": "r"}, "amount"),
    ("post", "/admin/users/bob_0001/adjustments", {"amount": [1], "reason": "r"}, "amount"),
    ("post", "/admin/users/bob_0001/adjustments", {"amount": "-99999", "reason": "r"}, "amount"),
    ("post", "/admin/users/bob_0001/adjustments", {"amount": "1", "reason": ""}, "reason"),
    ("put", "/admin/assets/BTC", {"is_active": "no", "reason": "r"}, "is_active"),
    ("put", "/admin/assets/B-T-C", {"is_active": True, "reason": "r"}, "asset_id"),
    ("get", "/admin/assets?is_active=maybe", None, "is_active"),
    ("post", "/admin/market/refresh", {"reason": ""}, "reason"),
    ("get", "/admin/orders?status=open", None, "status"),
    ("get", "/admin/orders?order_type=stop", None, "order_type"),
    ("get", "/admin/orders?since=yesterday", None, "since"),
    ("get", "/admin/orders?username=x", None, "username"),
    ("post", "/admin/orders/some-order/cancel", {}, "reason"),
    ("get", "/admin/audit?until=nope", None, "until"),
    ("get", "/admin/audit?since=2026-02-02&until=2026-01-01", None, "until"),
    ("get", "/admin/audit?actor=x", None, "actor"),
    ("get", "/admin/audit?limit=9999", None, "limit"),
    ("get", "/admin/audit.csv?since=bad", None, "since"),
    ("get", "/admin/system?integrity=maybe", None, "integrity"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_INPUT)
def test_bad_input_is_422_naming_the_field(
    api: TestClient,
    admin_headers: dict[str, str],
    bob: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    field: str,
) -> None:
    response = call(api, method, path, body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field
    assert not [r for r in audit_rows() if r["event_type"].startswith("admin_")]


def test_unknown_targets_are_404(api: TestClient, admin_headers: dict[str, str]) -> None:
    for method, path, body in (
        ("get", "/admin/users/nobody_01", None),
        ("post", "/admin/users/nobody_01/disable", REASON),
        ("post", "/admin/users/nobody_01/adjustments", {"amount": "1", "reason": "r"}),
        ("put", "/admin/assets/NOPE", {"is_active": False, "reason": "r"}),
        ("post", "/admin/orders/missing/cancel", REASON),
    ):
        assert call(api, method, path, body, headers=admin_headers).status_code == 404, path


def test_user_actions_over_http(
    api: TestClient, admin_headers: dict[str, str], bob: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    reset_settings()
    listed = api.get(f"{V1}/admin/users?query=BOB&sort=-created_at", headers=admin_headers).json()
    assert [u["username"] for u in listed["data"]] == ["bob_0001"] and listed["total_count"] == 1
    assert listed["data"][0]["cash"] == "0.00" and listed["has_more"] is False

    traced = {**admin_headers, "X-Request-ID": "trace-42"}
    response = api.post(f"{V1}/admin/users/bob_0001/disable", json={"reason": "abuse"}, headers=traced)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["is_active"] is False and body["revoked_sessions"] == 1 and body["changed"] is True
    assert api.get(f"{V1}/balance", headers=bob).status_code == 401  # signed out at once
    row = audit_rows("admin_user_disabled")[0]
    assert row["actor"] == "admin_01" and row["target"] == "bob_0001" and row["reason"] == "abuse"
    assert row["ip"] == "testclient" and row["request_id"] == "trace-42"
    assert ("user", "bob_0001") in outbox_entities()
    assert api.post(f"{V1}/admin/users/bob_0001/disable", json=REASON, headers=admin_headers).status_code == 409
    assert api.post(f"{V1}/admin/users/bob_0001/enable", json=REASON, headers=admin_headers).status_code == 200
    bob = login_headers(api, "bob_0001")  # enabled: may log in again

    signed_out = api.post(f"{V1}/admin/users/bob_0001/sign-out", json=REASON, headers=admin_headers).json()
    assert signed_out["revoked_sessions"] == 1 and api.get(f"{V1}/balance", headers=bob).status_code == 401

    role = api.put(f"{V1}/admin/users/bob_0001/role", json={"role": "admin", "reason": "helper"}, headers=admin_headers)
    assert role.status_code == 200 and role.json()["user"]["role"] == "admin"
    self_demote = {"role": "customer", "reason": "r"}
    assert api.put(f"{V1}/admin/users/bob_0001/role", json=self_demote, headers=admin_headers).status_code == 200
    last = api.put(f"{V1}/admin/users/admin_01/role", json=self_demote, headers=admin_headers)
    assert last.status_code == 422 and "last active admin" in last.json()["detail"][0]["msg"]

    credit = api.post(
        f"{V1}/admin/users/bob_0001/adjustments", json={"amount": "12.50", "reason": "prize"}, headers=admin_headers
    )
    assert credit.status_code == 201, credit.text
    entry = credit.json()["entry"]
    assert entry["transaction_type"] == "system_adjustment" and entry["amount"] == "12.50"
    assert credit.json()["user"]["cash"] == "12.50"
    assert ("ledger", entry["transaction_id"]) in outbox_entities()
    debit = api.post(
        f"{V1}/admin/users/bob_0001/adjustments", json={"amount": -12.51, "reason": "too much"}, headers=admin_headers
    )
    assert debit.status_code == 422 and "short by $0.01" in debit.json()["detail"][0]["msg"]

    detail = api.get(f"{V1}/admin/users/bob_0001?audit_limit=2", headers=admin_headers).json()
    assert detail["user"]["cash"] == "12.50" and detail["ledger"]["total_count"] == 1
    assert len(detail["audit"]["data"]) == 2 and detail["audit"]["has_more"] is True
    assert detail["audit"]["data"][0]["event_type"] == "admin_cash_adjusted"
    assert detail["audit"]["data"][0]["reason"] == "prize" and detail["sessions"] == []


def test_a_failing_audit_write_undoes_the_change(
    api: TestClient, admin_headers: dict[str, str], bob: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_record(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "record", failing_record)
    response = api.post(f"{V1}/admin/users/bob_0001/disable", json=REASON, headers=admin_headers)
    assert response.status_code == 500
    monkeypatch.undo()
    assert api.get(f"{V1}/balance", headers=bob).status_code == 200  # not disabled, still signed in


def test_assets_orders_audit_and_system_over_http(
    api: TestClient, admin_headers: dict[str, str], bob: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNOP_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    reset_settings()
    fund("bob_0001", "1000")
    pending = trading.place_order(
        "bob_0001", {"order_type": "limit_buy", "asset_id": "BTC", "quantity": "1", "price": "50"}
    )

    assets = api.get(f"{V1}/admin/assets", headers=admin_headers).json()
    assert assets["total_count"] == 2 and assets["active_count"] == 2
    btc = next(a for a in assets["data"] if a["asset_id"] == "BTC")
    assert btc["open_orders"] == 1 and btc["price_usd"] == 100 and btc["stale"] is False
    off = api.put(f"{V1}/admin/assets/btc", json={"is_active": False, "reason": "halt"}, headers=admin_headers)
    assert off.status_code == 200 and off.json()["changed"] is True and off.json()["data"]["is_active"] is False
    assert ("asset", "BTC") in outbox_entities()
    refused = api.post(
        f"{V1}/orders", json={"order_type": "market_buy", "asset_id": "BTC", "quantity": "1"}, headers=bob
    )
    assert refused.status_code == 422 and "not available for trading" in refused.json()["detail"][0]["msg"]
    same = api.put(f"{V1}/admin/assets/BTC", json={"is_active": False, "reason": "halt"}, headers=admin_headers)
    assert same.json()["changed"] is False
    assert [
        a["asset_id"] for a in api.get(f"{V1}/admin/assets?is_active=false", headers=admin_headers).json()["data"]
    ] == ["BTC"]

    market.seed_from_snapshot()
    refreshed = api.post(f"{V1}/admin/market/refresh", headers=admin_headers)  # no body: a default reason
    assert refreshed.status_code == 200 and refreshed.json()["outcome"] == "ok"
    assert audit_rows("admin_prices_refreshed")[0]["reason"] == "Manual refresh"

    orders = api.get(f"{V1}/admin/orders?username=bob_0001&status=pending", headers=admin_headers).json()
    assert [o["order_id"] for o in orders["data"]] == [pending.order_id] and orders["data"][0]["username"] == "bob_0001"
    cancelled = api.post(
        f"{V1}/admin/orders/{pending.order_id}/cancel", json={"reason": "stale order"}, headers=admin_headers
    )
    assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"
    again = api.post(f"{V1}/admin/orders/{pending.order_id}/cancel", json=REASON, headers=admin_headers)
    assert again.status_code == 409
    assert ("order", pending.order_id) in outbox_entities()

    log = api.get(f"{V1}/admin/audit?actor=admin_01&limit=2", headers=admin_headers).json()
    # The admin's own registration and login count too: 5 events by admin_01.
    assert log["total_count"] == 5 and [e["event_type"] for e in log["data"]] == [
        "admin_order_cancelled",
        "admin_prices_refreshed",
    ]
    assert log["data"][0]["target"] == pending.order_id and log["data"][0]["username"] == "bob_0001"
    csv = api.get(f"{V1}/admin/audit.csv?event_type=admin_asset_disabled", headers=admin_headers)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    lines = csv.text.strip().split("\n")
    assert len(lines) == 2 and ",BTC,halt," in lines[1]

    system = api.get(f"{V1}/admin/system", headers=admin_headers)
    assert system.status_code == 200, system.text
    figures = system.json()
    assert figures["users"]["total"] == 2 and figures["orders"]["today"] == 1
    assert figures["price_feed"]["next_refresh_at"] and figures["mirror"]["enabled"] is True
    assert figures["integrity"]["ok"] is True and figures["integrity"]["differences"] == []
    assert api.get(f"{V1}/admin/system?integrity=false", headers=admin_headers).json()["integrity"] is None


# ---------------------------------------------------------------- the contract


@pytest.fixture
def spec(api: TestClient) -> dict[str, Any]:
    return api.get("/openapi.json").json()


def check(spec: dict[str, Any], method: str, path: str, response: Any, status: int) -> Any:
    """Assert the status and validate the JSON body against the schema documented for it."""
    assert response.status_code == status, response.text
    documented = spec["paths"][V1 + path][method]["responses"][str(status)]
    schema = {**documented["content"][JSON]["schema"], "components": spec["components"]}
    body = response.json()
    jsonschema.Draft202012Validator(schema).validate(body)
    return body


def test_every_admin_and_account_route_is_documented(spec: dict[str, Any]) -> None:
    documented = {
        (method, path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path.startswith((f"{V1}/admin", f"{V1}/account", f"{V1}/watchlist"))
    }
    expected = {(m, V1 + p.split("?")[0].replace("bob_0001", "{username}")) for m, p, _ in ENDPOINTS}
    expected = {(m, p.replace("/BTC", "/{asset_id}").replace("some-order", "{order_id}")) for m, p in expected}
    expected |= {
        ("post", f"{V1}/account/reset"),
        ("get", f"{V1}/watchlist"),
        ("put", f"{V1}/watchlist/{{asset_id}}"),
        ("delete", f"{V1}/watchlist/{{asset_id}}"),
    }
    assert documented == expected
    for method, path in documented:
        op = spec["paths"][path][method]
        success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert success, (method, path)
        for response in success.values():
            content = response["content"]
            if path.endswith("audit.csv"):
                assert content == {"text/csv": {"schema": {"type": "string"}}}
            else:
                assert list(content) == [JSON] and content[JSON]["schema"]["$ref"].startswith("#/components/schemas/")
        for code, response in op["responses"].items():
            if code.startswith("4"):
                assert response["content"][JSON]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert op.get("security") and "401" in op["responses"], (method, path)
        if path.startswith(f"{V1}/admin"):
            assert "403" in op["responses"], (method, path)
        if "requestBody" in op:
            assert {"413", "422"} <= set(op["responses"]), (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_real_admin_responses_match_their_documented_schema(
    spec: dict[str, Any], api: TestClient, admin_headers: dict[str, str], bob: dict[str, str]
) -> None:
    h = admin_headers
    fund("bob_0001", "1000")
    trading.place_order("bob_0001", {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1"})
    pending = trading.place_order(
        "bob_0001", {"order_type": "limit_buy", "asset_id": "ETH", "quantity": "1", "price": "5"}
    )
    check(spec, "get", "/admin/users", api.get(f"{V1}/admin/users", headers=h), 200)
    check(spec, "get", "/admin/users", api.get(f"{V1}/admin/users"), 401)
    check(spec, "get", "/admin/users", api.get(f"{V1}/admin/users", headers=bob), 403)
    check(spec, "get", "/admin/users/{username}", api.get(f"{V1}/admin/users/bob_0001", headers=h), 200)
    check(spec, "get", "/admin/users/{username}", api.get(f"{V1}/admin/users/nobody_01", headers=h), 404)
    adjust = api.post(f"{V1}/admin/users/bob_0001/adjustments", json={"amount": "1", "reason": "r"}, headers=h)
    check(spec, "post", "/admin/users/{username}/adjustments", adjust, 201)
    check(
        spec,
        "post",
        "/admin/users/{username}/adjustments",
        api.post(f"{V1}/admin/users/bob_0001/adjustments", json={}, headers=h),
        422,
    )
    role = api.put(f"{V1}/admin/users/bob_0001/role", json={"role": "customer", "reason": "r"}, headers=h)
    check(spec, "put", "/admin/users/{username}/role", role, 200)
    check(
        spec,
        "post",
        "/admin/users/{username}/sign-out",
        api.post(f"{V1}/admin/users/bob_0001/sign-out", json=REASON, headers=h),
        200,
    )
    check(
        spec,
        "post",
        "/admin/users/{username}/disable",
        api.post(f"{V1}/admin/users/bob_0001/disable", json=REASON, headers=h),
        200,
    )
    check(
        spec,
        "post",
        "/admin/users/{username}/disable",
        api.post(f"{V1}/admin/users/bob_0001/disable", json=REASON, headers=h),
        409,
    )
    check(
        spec,
        "post",
        "/admin/users/{username}/enable",
        api.post(f"{V1}/admin/users/bob_0001/enable", json=REASON, headers=h),
        200,
    )
    check(spec, "get", "/admin/assets", api.get(f"{V1}/admin/assets", headers=h), 200)
    toggle = api.put(f"{V1}/admin/assets/ETH", json={"is_active": False, "reason": "r"}, headers=h)
    check(spec, "put", "/admin/assets/{asset_id}", toggle, 200)
    check(spec, "get", "/admin/orders", api.get(f"{V1}/admin/orders", headers=h), 200)
    cancel = api.post(f"{V1}/admin/orders/{pending.order_id}/cancel", json=REASON, headers=h)
    check(spec, "post", "/admin/orders/{order_id}/cancel", cancel, 200)
    market.seed_from_snapshot()
    check(spec, "post", "/admin/market/refresh", api.post(f"{V1}/admin/market/refresh", json=REASON, headers=h), 200)
    check(spec, "get", "/admin/audit", api.get(f"{V1}/admin/audit", headers=h), 200)
    with_error = api.get(f"{V1}/admin/system", headers=h)
    body = check(spec, "get", "/admin/system", with_error, 200)
    assert body["database"]["size_bytes"] > 0
