"""REST endpoints of the trading engine: shapes, every bad input, and the mapping of domain errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cnop_app.models import utcnow
from cnop_app.services import portfolio, trading
from tests.support.helpers import register_and_login
from tests.support.trading_fixtures import account_of, add_asset, check_invariants, fund, set_active, set_price

ORDERS = "/api/v1/orders"


@pytest.fixture
def alice(client: TestClient) -> Iterator[dict[str, str]]:
    add_asset("BTC", "100")
    add_asset("ETH", "10")
    add_asset("OLD", "5", active=False)
    headers = register_and_login(client, "alice_01")
    fund("alice_01", "5000")
    yield headers
    check_invariants()


def order(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    payload = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1", **body}
    return client.post(ORDERS, json=payload, headers=headers)


def field_of(response: Any) -> str | None:
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return detail[0]["field"]


def test_market_buy_contract_shape(client: TestClient, alice: dict[str, str]) -> None:
    response = order(client, alice, quantity="1.25")
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    for key in ("order_id", "order_type", "asset_id", "quantity", "price", "status", "total_amount", "created_at"):
        assert key in data
    assert data["status"] == "completed" and data["quantity"] == "1.25" and data["price"] == "100"
    assert data["total_amount"] == "125.00" and data["fee"] == "0.00" and data["completed_at"]
    assert client.get("/api/v1/balance", headers=alice).json()["current_balance"] == "4875.00"


def test_json_numbers_are_read_by_their_decimal_text(client: TestClient, alice: dict[str, str]) -> None:
    response = order(client, alice, quantity=0.1)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["quantity"] == "0.1" and response.json()["data"]["total_amount"] == "10.00"
    response = order(client, alice, quantity=2)
    assert response.status_code == 201 and response.json()["data"]["quantity"] == "2"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": ["1"]}, "quantity"),
        ({"quantity": {"v": 1}}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"order_type": 1}, "order_type"),
        ({"asset_id": 7}, "asset_id"),
        ({"client_order_id": 12}, "client_order_id"),
        ({"order_type": "limit_buy", "price": [1]}, "price"),
        ({"order_type": "limit_buy", "price": "10", "expires_at": 1700000000}, "expires_at"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "0.0001"}, "quantity"),
        ({"quantity": "0.000000001"}, "quantity"),
        ({"quantity": "1.123456789"}, "quantity"),
        ({"quantity": "1e400"}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"quantity": "ten"}, "quantity"),
        ({"order_type": "buy"}, "order_type"),
        ({"asset_id": "BT C"}, "asset_id"),
        ({"asset_id": "TOOLONGASSET"}, "asset_id"),
        ({"asset_id": "NOPE"}, "asset_id"),
        ({"asset_id": "OLD"}, "asset_id"),
        ({"order_type": "limit_buy"}, "price"),
        ({"order_type": "limit_sell", "price": None}, "price"),
        ({"order_type": "limit_buy", "price": "0"}, "price"),
        ({"order_type": "limit_buy", "price": "-3"}, "price"),
        ({"order_type": "limit_buy", "price": "1000001"}, "price"),
        ({"order_type": "limit_buy", "price": "1.123456789"}, "price"),
        ({"order_type": "limit_buy", "price": "10", "expires_at": "soon"}, "expires_at"),
        ({"order_type": "limit_buy", "price": "10", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"quantity": "101"}, "quantity"),  # value 10,100 > 10,000
        ({"quantity": "50.01"}, "quantity"),  # insufficient cash
        ({"order_type": "market_sell"}, "quantity"),  # oversell
    ],
)
def test_bad_orders_are_422_naming_the_field(
    client: TestClient, alice: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = order(client, alice, **body)
    assert response.status_code == 422, response.text
    assert field_of(response) == field
    assert client.get(ORDERS, headers=alice).json()["data"] == []
    assert account_of("alice_01").cash == Decimal("5000.00")


def test_shortfalls_are_in_the_message(client: TestClient, alice: dict[str, str]) -> None:
    order(client, alice, quantity="2")
    response = order(client, alice, order_type="market_sell", quantity="2.5")
    assert response.status_code == 422
    assert "short by 0.5" in response.json()["detail"][0]["msg"]
    response = order(client, alice, quantity="49")
    assert response.status_code == 422 and "short by $100.00" in response.json()["detail"][0]["msg"]


def test_malformed_json_and_missing_fields(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post(ORDERS, content=b"{not json", headers={**alice, "Content-Type": "application/json"})
    assert response.status_code == 422
    response = client.post(ORDERS, json={"order_type": "market_buy"}, headers=alice)
    assert response.status_code == 422 and {d["field"] for d in response.json()["detail"]} == {"asset_id", "quantity"}


def test_price_on_a_market_order_is_ignored(client: TestClient, alice: dict[str, str]) -> None:
    response = order(client, alice, price="1")
    assert response.status_code == 201 and response.json()["data"]["price"] == "100"


def test_auth_is_required(client: TestClient, alice: dict[str, str]) -> None:
    for method, path in [
        ("post", ORDERS),
        ("get", ORDERS),
        ("get", f"{ORDERS}/x"),
        ("post", f"{ORDERS}/x/cancel"),
        ("get", "/api/v1/assets/BTC/transactions"),
        ("get", "/api/v1/portfolio"),
        ("get", "/api/v1/portfolio/history"),
        ("get", "/api/v1/balance/asset/BTC"),
    ]:
        response = getattr(client, method)(path, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401, (method, path)


def test_limit_order_lifecycle_and_cancel_twice(client: TestClient, alice: dict[str, str]) -> None:
    expires = (utcnow() + timedelta(hours=1)).isoformat()
    response = order(client, alice, order_type="limit_buy", quantity="2", price="90", expires_at=expires)
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["status"] == "pending" and data["price"] == "90" and data["held_amount"] == "180.00"
    assert data["expires_at"] is not None
    balance = client.get("/api/v1/balance", headers=alice).json()
    assert balance["held_balance"] == "180.00" and balance["available_balance"] == "4820.00"
    cancel = client.post(f"{ORDERS}/{data['order_id']}/cancel", headers=alice)
    assert cancel.status_code == 200 and cancel.json()["data"]["status"] == "cancelled"
    again = client.post(f"{ORDERS}/{data['order_id']}/cancel", headers=alice)
    assert again.status_code == 409
    completed = order(client, alice).json()["data"]
    assert client.post(f"{ORDERS}/{completed['order_id']}/cancel", headers=alice).status_code == 409
    assert client.post(f"{ORDERS}/{uuid.uuid4()}/cancel", headers=alice).status_code == 404
    assert client.post(f"{ORDERS}/nope/cancel", headers=alice).status_code == 422  # order ids are UUIDs


def test_limit_fill_is_visible_through_the_api(client: TestClient, alice: dict[str, str]) -> None:
    placed = order(client, alice, order_type="limit_buy", quantity="1", price="95").json()["data"]
    set_price("BTC", "94")
    assert trading.match_limit_orders() == 1
    data = client.get(f"{ORDERS}/{placed['order_id']}", headers=alice).json()["data"]
    assert data["status"] == "completed" and data["executed_price"] == "95" and data["total_amount"] == "95.00"


def test_other_users_order_is_404(client: TestClient, alice: dict[str, str]) -> None:
    placed = order(client, alice, order_type="limit_buy", quantity="1", price="50").json()["data"]
    bob = register_and_login(client, "bob_0001")
    assert client.get(f"{ORDERS}/{placed['order_id']}", headers=bob).status_code == 404
    assert client.post(f"{ORDERS}/{placed['order_id']}/cancel", headers=bob).status_code == 404
    assert client.get(ORDERS, headers=bob).json() == {"data": [], "has_more": False, "limit": 50, "offset": 0}
    assert client.get(f"{ORDERS}/{placed['order_id']}", headers=alice).status_code == 200


def test_list_orders_filters_paging_and_bad_params(client: TestClient, alice: dict[str, str]) -> None:
    for _ in range(3):
        order(client, alice, quantity="0.01")
    order(client, alice, asset_id="ETH", quantity="1")
    order(client, alice, order_type="limit_buy", quantity="1", price="1")
    page = client.get(ORDERS, params={"limit": 2}, headers=alice).json()
    assert len(page["data"]) == 2 and page["has_more"] is True
    rest = client.get(ORDERS, params={"limit": 2, "offset": 4}, headers=alice).json()
    assert len(rest["data"]) == 1 and rest["has_more"] is False
    everything = client.get(ORDERS, headers=alice).json()["data"]
    assert [o["created_at"] for o in everything] == sorted((o["created_at"] for o in everything), reverse=True)
    assert len(client.get(ORDERS, params={"asset_id": "ETH"}, headers=alice).json()["data"]) == 1
    assert len(client.get(ORDERS, params={"status": "pending"}, headers=alice).json()["data"]) == 1
    assert len(client.get(ORDERS, params={"order_type": "market_buy"}, headers=alice).json()["data"]) == 4
    for params in ({"limit": 0}, {"limit": "x"}, {"offset": -1}, {"status": "done"}, {"order_type": "x"}):
        response = client.get(ORDERS, params=params, headers=alice)
        assert response.status_code == 422, params


def test_idempotency_key_header_and_client_order_id(client: TestClient, alice: dict[str, str]) -> None:
    headers = {**alice, "Idempotency-Key": "retry-1"}
    first = order(client, headers)
    second = order(client, headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["data"]["order_id"] == second.json()["data"]["order_id"]
    assert order(client, headers, quantity="2").status_code == 422  # same key, different body
    a = order(client, alice, client_order_id="c-1")
    b = order(client, alice, client_order_id="c-1")
    assert a.json()["data"]["order_id"] == b.json()["data"]["order_id"]
    assert b.json()["data"]["client_order_id"] == "c-1"
    assert order(client, alice, client_order_id="c-1", quantity="3").status_code == 409
    assert account_of("alice_01").cash == Decimal("4800.00")
    assert len(client.get(ORDERS, headers=alice).json()["data"]) == 2


def test_asset_transactions(client: TestClient, alice: dict[str, str]) -> None:
    order(client, alice, quantity="2")
    order(client, alice, order_type="market_sell", quantity="0.5")
    response = client.get("/api/v1/assets/btc/transactions", headers=alice)
    assert response.status_code == 200
    body = response.json()
    assert [t["transaction_type"] for t in body["data"]] == ["SELL", "BUY"] and body["has_more"] is False
    first = body["data"][0]
    for key in ("asset_id", "transaction_type", "quantity", "price", "status", "timestamp"):
        assert key in first
    assert first["quantity"] == "0.5" and first["status"] == "completed"
    assert client.get("/api/v1/assets/NOPE/transactions", headers=alice).status_code == 404
    assert client.get("/api/v1/assets/B-T/transactions", headers=alice).status_code == 422
    assert client.get("/api/v1/assets/ETH/transactions", headers=alice).json()["data"] == []


def test_portfolio_and_asset_balance(client: TestClient, alice: dict[str, str]) -> None:
    assert client.get("/api/v1/portfolio", headers=alice).json()["assets"] == []
    order(client, alice, quantity="2")
    set_price("BTC", "110")
    body = client.get("/api/v1/portfolio", headers=alice).json()
    asset = body["assets"][0]
    assert asset["asset_id"] == "BTC" and asset["quantity"] == "2" and asset["current_price"] == "110"
    assert asset["market_value"] == "220.00" and asset["unrealized_pnl"] == "20.00"
    assert asset["unrealized_pnl_percent"] == "10" and asset["allocation_percent"] == "100"
    assert body["totals"]["total_equity"] == "5020.00" and body["totals"]["cash"] == "4800.00"
    one = client.get("/api/v1/balance/asset/btc", headers=alice)
    assert one.status_code == 200 and one.json()["data"]["total_value"] == "220.00"
    assert client.get("/api/v1/balance/asset/ETH", headers=alice).status_code == 404
    assert client.get("/api/v1/balance/asset/E-H", headers=alice).status_code == 422


def test_portfolio_history(client: TestClient, alice: dict[str, str]) -> None:
    order(client, alice, quantity="1")
    portfolio.record_snapshots()
    set_price("BTC", "120")
    portfolio.record_snapshots()
    body = client.get("/api/v1/portfolio/history", params={"range": "7d"}, headers=alice).json()
    assert body["range"] == "7d" and [p["total_value"] for p in body["data"]] == ["5000.00", "5020.00"]
    assert client.get("/api/v1/portfolio/history", headers=alice).status_code == 200
    bad = client.get("/api/v1/portfolio/history", params={"range": "1y"}, headers=alice)
    assert bad.status_code == 422 and field_of(bad) == "range"


def test_inactive_asset_and_unpriced_asset(client: TestClient, alice: dict[str, str]) -> None:
    order(client, alice, quantity="1")
    set_active("BTC", False)
    response = order(client, alice, order_type="market_sell", quantity="1")
    assert response.status_code == 422 and "not available" in response.json()["detail"][0]["msg"]
    add_asset("NEW", None)
    response = order(client, alice, asset_id="NEW")
    assert response.status_code == 422 and "No current price" in response.json()["detail"][0]["msg"]
