"""Where the API's group commit runs: on SQLite on the event loop, when the writer is free; while
another thread or process writes, on the database thread, with the loop serving meanwhile. On
PostgreSQL always on a database thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cnop_app.api import create_api
from cnop_app.config import get_settings
from tests.support.helpers import (
    another_thread_writing,
    register_and_login,
    sqlite_write_lock_in_another_process,
    statement_threads,
)
from tests.support.trading_fixtures import add_asset, check_invariants

BUY = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.1"}


@pytest.fixture
def api_on(any_db: str) -> Iterator[tuple[TestClient, str]]:
    with TestClient(create_api(), raise_server_exceptions=False) as client:
        yield client, any_db


@contextmanager
def order_insert_threads() -> Iterator[list[str]]:
    """The thread of every statement that inserts an order, sent while the block runs (filled when
    it ends). PostgreSQL writes a fill in one WITH ... statement."""
    threads: list[str] = []
    with statement_threads() as seen:
        yield threads
    threads.extend(name for name, statement in seen if "INSERT INTO orders" in statement)


def _funded_users(client: TestClient, count: int) -> list[dict[str, str]]:
    add_asset("BTC", "100")
    users = [register_and_login(client, f"loop_{i:02d}") for i in range(count)]
    for headers in users:
        assert client.post("/api/v1/balance/deposit", json={"amount": "1000"}, headers=headers).status_code == 201
    return users


def test_orders_commit_on_the_loop_on_sqlite_and_on_a_database_thread_on_postgresql(
    api_on: tuple[TestClient, str],
) -> None:
    client, backend = api_on
    users = _funded_users(client, 3)

    async def burst() -> tuple[str, list[int]]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            calls = [http.post("/api/v1/orders", json=BUY, headers=users[i % 3]) for i in range(12)]
            return threading.current_thread().name, [r.status_code for r in await asyncio.gather(*calls)]

    with order_insert_threads() as threads:
        loop_thread, codes = asyncio.run(burst())
    assert codes == [201] * 12
    assert len(threads) == 12
    if backend == "sqlite":
        assert set(threads) == {loop_thread}
    else:
        assert loop_thread not in threads and all(name.startswith("cnop-db") for name in threads)
    check_invariants()


@pytest.mark.parametrize("writer", ["another thread", "another process"])
def test_while_the_writer_is_busy_orders_wait_on_the_database_thread_and_the_loop_keeps_serving(
    cnop_env: Path, writer: str
) -> None:
    busy: Callable[[], AbstractContextManager[None]] = (
        another_thread_writing
        if writer == "another thread"
        else lambda: sqlite_write_lock_in_another_process(get_settings().database_url)
    )
    with TestClient(create_api(), raise_server_exceptions=False) as client:
        users = _funded_users(client, 2)

        async def scenario() -> tuple[str, list[int], bool]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                with busy():
                    orders = [asyncio.ensure_future(http.post("/api/v1/orders", json=BUY, headers=h)) for h in users]
                    # The loop is not stuck behind the writer: a read is answered while the orders wait.
                    read = await asyncio.wait_for(http.get("/api/v1/balance", headers=users[0]), 2)
                    assert read.status_code == 200
                    waited = not any(order.done() for order in orders)
                codes = [r.status_code for r in await asyncio.wait_for(asyncio.gather(*orders), 30)]
            return threading.current_thread().name, codes, waited

        with order_insert_threads() as threads:
            loop_thread, codes, waited = asyncio.run(scenario())

        async def later_order() -> int:  # on a new loop: the drain did not stay with the old one
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return (await asyncio.wait_for(http.post("/api/v1/orders", json=BUY, headers=users[0]), 5)).status_code

        assert asyncio.run(later_order()) == 201
    assert codes == [201, 201]
    assert waited  # they were held by the writer...
    assert threads and loop_thread not in threads  # ...and written by the database thread once it was free
    check_invariants()
