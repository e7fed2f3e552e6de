"""The API's hot reads (balance, portfolio, the asset list): on SQLite they run on the event loop, never
queued behind a group commit on the database thread; on PostgreSQL they take one hop to a database
thread. A revoked token presented to them is still audited, on the database thread, before the 401."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import event
from sqlmodel import select

from cnop_app.api import create_api
from cnop_app.api.deps import rendered
from cnop_app.api.schemas.balance import BalanceOut
from cnop_app.api.schemas.market import AssetSummaryOut
from cnop_app.api.schemas.trading import OrderEnvelope, PortfolioOut
from cnop_app.db import SERVER_DB_THREADS, SQLITE_DB_THREADS, db_executor, read_engine, read_session
from cnop_app.domain.errors import AuthenticationFailed
from cnop_app.models import AuditEvent
from cnop_app.services import accounts, audit, auth, portfolio, trading
from tests.support.helpers import register_and_login, statement_threads
from tests.support.trading_fixtures import add_asset, make_user, set_price

HOT_READS = ("/api/v1/balance", "/api/v1/portfolio", "/api/v1/inventory/assets?limit=100")


@pytest.fixture
def api_on(any_db: str) -> Iterator[tuple[TestClient, str]]:
    with TestClient(create_api(), raise_server_exceptions=False) as client:
        yield client, any_db


def _get_all(client: TestClient, headers: dict[str, str], paths: tuple[str, ...]) -> tuple[str, list[int]]:
    """GET each path on an event loop in this thread: (the loop's thread name, the status codes).
    Each request has 2 s: a read queued behind a busy database thread would not make it."""

    async def run() -> tuple[str, list[int]]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            codes = [(await asyncio.wait_for(http.get(path, headers=headers), 2)).status_code for path in paths]
        return threading.current_thread().name, codes

    return asyncio.run(run())


def test_hot_reads_run_on_the_loop_on_sqlite_and_on_a_database_thread_on_postgresql(
    api_on: tuple[TestClient, str],
) -> None:
    client, backend = api_on
    add_asset("BTC", "100")
    headers = register_and_login(client)
    with statement_threads() as seen:
        loop_thread, codes = _get_all(client, headers, HOT_READS)
    assert codes == [200, 200, 200]
    threads = {name for name, _statement in seen}
    assert len(seen) >= 4  # the session, the balance, today's moves, the holdings...
    if backend == "sqlite":
        assert threads == {loop_thread}
    else:
        assert loop_thread not in threads and all(name.startswith("cnop-db") for name in threads)


def test_hot_reads_on_sqlite_keep_one_connection_and_each_sees_the_latest_commit(
    api_on: tuple[TestClient, str],
) -> None:
    client, backend = api_on
    headers = register_and_login(client)
    checkouts: list[object] = []

    def count(*_args: object) -> None:
        checkouts.append(_args)

    engine = read_engine()
    event.listen(engine, "checkout", count)
    try:

        async def run() -> list[str]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                seen = []
                for amount in ("10", "2.5", "0.01"):
                    accounts.deposit("alice_01", amount)
                    response = await http.get("/api/v1/balance", headers=headers)
                    assert response.status_code == 200
                    seen.append(response.json()["current_balance"])
                return seen

        assert asyncio.run(run()) == ["10.00", "12.50", "12.51"]
    finally:
        event.remove(engine, "checkout", count)
    if backend == "sqlite":
        assert len(checkouts) == 1  # the loop's thread kept its read connection


def test_a_hot_read_on_sqlite_is_not_queued_behind_the_database_thread(cnop_env: Path) -> None:
    with TestClient(create_api(), raise_server_exceptions=False) as client:
        add_asset("BTC", "100")
        headers = register_and_login(client)
        # A long group commit, on every database thread (the executor is first in, first out).
        release, started = threading.Event(), threading.Event()

        def long_commit() -> None:
            started.set()
            release.wait(30)

        jobs = [db_executor().submit(long_commit) for _ in range(max(SQLITE_DB_THREADS, SERVER_DB_THREADS))]
        try:
            assert started.wait(5)
            _loop, codes = _get_all(client, headers, HOT_READS)
        finally:
            release.set()
            for job in jobs:
                job.result(5)
        assert codes == [200, 200, 200]


def test_a_revoked_token_at_a_hot_read_is_audited_on_the_database_thread_before_the_401(
    api_on: tuple[TestClient, str],
) -> None:
    client, _backend = api_on
    headers = register_and_login(client)
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 200
    with statement_threads() as seen:
        loop_thread, codes = _get_all(client, headers, ("/api/v1/balance",))
    assert codes == [401]
    inserts = [name for name, statement in seen if statement.startswith("INSERT INTO audit_events")]
    assert len(inserts) == 1 and inserts[0] != loop_thread and inserts[0].startswith("cnop-db")
    with read_session() as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.event_type == audit.REVOKED_TOKEN_PRESENTED)).all()
    assert [row.username for row in rows] == ["alice_01"]


def test_revoked_tokens_read_together_leave_later_audit_rows_written(cnop_env: Path) -> None:
    """Two revoked tokens at hot reads at once, each awaiting its audit row: afterwards an audit on the
    same thread is written at once, not collected for a request that has already been answered."""
    with TestClient(create_api(), raise_server_exceptions=False) as client:
        users = [register_and_login(client, f"gone_{i:03d}") for i in range(2)]
        for headers in users:
            assert client.post("/api/v1/auth/logout", headers=headers).status_code == 200

        async def together() -> list[int]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                calls = [http.get("/api/v1/balance", headers=headers) for headers in users]
                return [r.status_code for r in await asyncio.gather(*calls)]

        assert asyncio.run(together()) == [401, 401]
        token = users[0]["Authorization"].removeprefix("Bearer ")
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(token)  # on this thread, outside any request
    with read_session() as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.event_type == audit.REVOKED_TOKEN_PRESENTED)).all()
    assert sorted(row.username for row in rows) == ["gone_000", "gone_000", "gone_001"]


def test_hot_routes_render_their_bodies_exactly_as_fastapis_response_model(cnop_env: Path) -> None:
    """`deps.rendered` skips FastAPI's second validation of the route's own model (the hot reads and a
    placed order): the bytes must be those FastAPI writes for the same `response_model` with the API's
    response class."""
    add_asset("BTC", "64250.12345678")
    add_asset("ETH", "3100.5")
    user = make_user("render_check", "25000.10")
    trading.place_order(user, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.0012345"})
    placed = trading.place_order(user, {"order_type": "market_buy", "asset_id": "ETH", "quantity": "0.3"})
    set_price("ETH", "3333.333")
    bodies: list[BaseModel] = [
        OrderEnvelope.of(placed),
        PortfolioOut.of(portfolio.get_portfolio(user)),
        BalanceOut.of(accounts.get_balance(user), accounts.allowance(user)),
        # Asset figures are JSON numbers written as Python writes floats (pydantic's writer would not).
        AssetSummaryOut(
            asset_id="PEPE",
            name="Pepe ü",
            description=None,
            category="meme",
            price_usd=Decimal("0.00001172"),
            is_active=True,
            symbol="PEPE",
            image=None,
            market_cap_rank=None,
            price_change_percentage_24h=Decimal("-3.25"),
            market_cap=Decimal("4930000000"),
            total_volume_24h=Decimal("1e21"),
            price_change_percentage_7d=None,
            last_updated=None,
            source="snapshot",
            price_age_seconds=12,
            stale=False,
        ),
    ]
    reference = FastAPI(default_response_class=create_api().router.default_response_class)
    for index, body in enumerate(bodies):
        reference.get(f"/{index}", response_model=type(body))(lambda body=body: body)
    with TestClient(reference) as client:
        for index, body in enumerate(bodies):
            assert rendered(body).body == client.get(f"/{index}").content
