"""`read_connection(keep=True)`: the event loop's thread keeps its read connection from one request to the
next. Each use still reads a fresh snapshot, an idle kept connection holds no transaction (a WAL
checkpoint goes through), and the connection is closed when the engines are disposed or its thread ends."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from cnop_app import db
from cnop_app.db import dispose_engines
from cnop_app.read_path import read_connection
from cnop_app.services import accounts
from tests.support.trading_fixtures import fund, make_user


def _cash(conn: Connection, username: str) -> Decimal:
    row = accounts._BALANCE.first(conn, {"username": username})
    assert row is not None
    return row.cash


def test_a_kept_connection_is_reused_and_each_use_reads_a_fresh_snapshot(any_db: str) -> None:
    user = make_user("kept_reader", "100")
    with read_connection(keep=True) as first:
        assert _cash(first, user) == Decimal("100")
        with read_connection() as nested:  # a nested use shares it: one snapshot per request
            assert nested is first
    assert not first.in_transaction() and not first.closed
    fund(user, "23.45")  # committed by another connection between two requests
    with read_connection(keep=True) as second:
        assert second is first
        assert _cash(second, user) == Decimal("123.45")


def test_an_idle_kept_connection_does_not_hold_back_a_wal_checkpoint(cnop_env: Path) -> None:
    user = make_user("kept_wal", "100")
    with read_connection(keep=True) as conn:
        _cash(conn, user)
    for _ in range(5):
        fund(user, "1")
    other = sqlite3.connect(cnop_env / "cnop.db")
    try:
        busy, log_frames, checkpointed = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        other.close()
    # A reader still in its snapshot would make the checkpoint busy and leave frames behind.
    assert busy == 0 and log_frames == checkpointed == 0


def test_an_error_inside_leaves_the_kept_connection_usable(any_db: str) -> None:
    user = make_user("kept_error", "100")
    with pytest.raises(RuntimeError), read_connection(keep=True) as conn:
        _cash(conn, user)
        raise RuntimeError("the route failed after its read")
    assert not conn.in_transaction()
    fund(user, "1")
    with read_connection(keep=True) as again:
        assert again is conn and _cash(again, user) == Decimal("101")


def test_disposing_the_engines_closes_it_and_the_next_use_opens_a_fresh_one(any_db: str) -> None:
    user = make_user("kept_dispose", "100")
    with read_connection(keep=True) as conn:
        _cash(conn, user)
    dispose_engines()
    assert conn.closed
    with read_connection(keep=True) as fresh:
        assert fresh is not conn and _cash(fresh, user) == Decimal("100")


def test_a_thread_that_ends_closes_its_kept_connection(cnop_env: Path) -> None:
    user = make_user("kept_thread", "100")
    kept: list[Connection] = []

    def request() -> None:
        with read_connection(keep=True) as conn:
            _cash(conn, user)
            kept.append(conn)

    worker = threading.Thread(target=request)
    worker.start()
    worker.join(10)
    gc.collect()
    assert len(kept) == 1 and kept[0].closed
    assert db.read_engine().pool.checkedout() == 0  # back in the pool, not leaked


def test_a_forked_worker_opens_its_own_and_leaves_the_parents_alone(cnop_env: Path) -> None:
    """The production server forks its workers after importing the app."""
    user = make_user("kept_fork", "100")
    with read_connection(keep=True) as parent_conn:
        _cash(parent_conn, user)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 3
        try:
            with read_connection(keep=True) as child_conn:
                code = 0 if child_conn is not parent_conn and _cash(child_conn, user) == Decimal("100") else 2
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    fund(user, "1")
    with read_connection(keep=True) as again:
        assert again is parent_conn and not again.closed and _cash(again, user) == Decimal("101")
