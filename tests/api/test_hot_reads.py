"""The API's hot reads (balance, portfolio, the asset list): on SQLite they run on the event loop, never
queued behind a group commit on the database thread; on PostgreSQL they take one hop to a database
thread. A revoked token presented to them is still audited, on the database thread, before the 401."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from cnop_app.api import create_api
from cnop_app.db import SERVER_DB_THREADS, SQLITE_DB_THREADS, db_executor, read_session
from cnop_app.domain.errors import AuthenticationFailed
from cnop_app.models import AuditEvent
from cnop_app.services import audit, auth
from tests.support.helpers import register_and_login, statement_threads
from tests.support.trading_fixtures import add_asset

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
