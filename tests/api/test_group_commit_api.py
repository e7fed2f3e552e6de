"""POST /orders under concurrency: requests are committed together (group commit), each still gets its
own answer: 201 with its own order, 422 for its own bad input, 401 for its own bad token."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from fastapi.testclient import TestClient
from sqlmodel import select

from cnop_app.db import read_engine, read_session
from cnop_app.models import AuditEvent
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import audit
from tests.support.helpers import register_and_login, statements_on
from tests.support.trading_fixtures import add_asset, check_invariants


def _batches() -> tuple[float, float]:
    """(batches committed, orders in them) so far."""
    count = REGISTRY.get_sample_value("cnop_write_batch_size_count") or 0.0
    total = REGISTRY.get_sample_value("cnop_write_batch_size_sum") or 0.0
    return count, total


def test_concurrent_orders_are_grouped_and_each_gets_its_own_answer(client: TestClient) -> None:
    add_asset("BTC", "100")
    users = [register_and_login(client, f"group_{i:02d}") for i in range(4)]
    for headers in users:
        assert client.post("/api/v1/balance/deposit", json={"amount": "1000"}, headers=headers).status_code == 201
    before = _batches()

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            calls = []
            for i in range(40):
                headers = users[i % 4]
                body = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.5"}
                if i == 7:
                    body["quantity"] = "-1"  # its own 422
                if i == 9:
                    headers = {"Authorization": headers["Authorization"] + "x"}  # its own 401
                if i == 11:
                    body["quantity"] = "100"  # $10,000: more than the account has
                calls.append(http.post("/api/v1/orders", json=body, headers=headers))
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(burst())
    codes = [r.status_code for r in responses]
    assert codes[7] == 422 and responses[7].json()["detail"][0]["field"] == "quantity"
    assert codes[9] == 401
    assert codes[11] == 422 and "Insufficient" in responses[11].text
    assert all(code == 201 for i, code in enumerate(codes) if i not in (7, 9, 11))
    order_ids = {r.json()["data"]["order_id"] for r in responses if r.status_code == 201}
    assert len(order_ids) == 37  # every accepted request got its own order
    count, total = (after - was for after, was in zip(_batches(), before, strict=True))
    assert total == 39  # all but the 401 ran in a transaction; the two refused ones wrote nothing
    assert count < total  # grouped: fewer commits than orders
    for headers in users:
        balance = client.get("/api/v1/balance", headers=headers).json()
        holding = client.get("/api/v1/balance/asset/BTC", headers=headers).json()["data"]
        spent = Decimal(1000) - Decimal(balance["current_balance"])
        assert spent > 0 and Decimal(holding["quantity"]) * 100 <= spent  # paid at least the price (plus fees)
    check_invariants()


def test_a_batch_reads_its_sessions_in_one_statement_and_still_refuses_a_revoked_one(client: TestClient) -> None:
    add_asset("BTC", "100")
    users = [register_and_login(client, f"group_{i:02d}") for i in range(3)]
    for headers in users:
        assert client.post("/api/v1/balance/deposit", json={"amount": "1000"}, headers=headers).status_code == 201
    gone = register_and_login(client, "gone_001")
    assert client.post("/api/v1/auth/logout", headers=gone).status_code == 200

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            calls = []
            for i in range(30):
                headers = gone if i == 13 else users[i % 3]
                body = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.1"}
                calls.append(http.post("/api/v1/orders", json=body, headers={**headers, "X-Request-ID": f"burst-{i}"}))
            return list(await asyncio.gather(*calls))

    before = _batches()
    with statements_on(read_engine()) as seen:
        responses = asyncio.run(burst())
    session_reads = [statement for statement in seen if "FROM auth_sessions" in statement]
    codes = [r.status_code for r in responses]
    assert codes[13] == 401 and "revoked" in responses[13].text
    assert all(code == 201 for i, code in enumerate(codes) if i != 13)
    batches = _batches()[0] - before[0]
    assert 0 < batches < 29
    assert len(session_reads) == batches  # one session read per batch, not one per order
    with read_session() as session:
        reuse = session.exec(
            select(AuditEvent).where(
                AuditEvent.event_type == audit.REVOKED_TOKEN_PRESENTED, AuditEvent.username == "gone_001"
            )
        ).all()
    assert [row.request_id for row in reuse] == ["burst-13"]  # audited in its own request's name
    check_invariants()
