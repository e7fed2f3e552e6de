"""`hot_query.HotQuery`: the hot path's fixed reads, run on the driver's cursor, return exactly what SQLAlchemy's
`conn.execute` returns for the same statement (values, types, column names), on SQLite and PostgreSQL.
`hot_query.HotInsert` (the outbox rows of every order) stores exactly what SQLAlchemy's insert stores."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import bindparam, column, insert, select, table, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import select as sqlmodel_select

from cnop_app import db, hot_query
from cnop_app.db import read_engine, write_engine, write_session
from cnop_app.hot_query import HotInsert, HotQuery
from cnop_app.models import Asset, Outbox, User
from cnop_app.read_path import read_connection
from cnop_app.services import accounts, portfolio, trading
from cnop_app.services.auth import sessions
from tests.support.helpers import statements_on
from tests.support.trading_fixtures import add_asset, fund, make_user, set_price


def _both_ways(query: HotQuery, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    with read_connection() as conn:
        hot = query.rows(conn, params)
        result = conn.execute(query.statement, params)
        usual = [row._asdict() for row in result]
    return [row._asdict() for row in hot], usual


def _same(query: HotQuery, params: dict[str, Any]) -> list[dict[str, Any]]:
    hot, usual = _both_ways(query, params)
    assert hot == usual
    # Equal values of the same types: an exact Decimal, never a float or text; aware datetimes.
    for hot_row, usual_row in zip(hot, usual, strict=True):
        assert list(hot_row) == list(usual_row)
        for name, value in hot_row.items():
            assert type(value) is type(usual_row[name]), name
            if isinstance(value, datetime):
                assert value.tzinfo is not None, name
    return hot


def test_hot_reads_equal_sqlalchemys_on_every_backend(any_db: str) -> None:
    add_asset("BTC", "64250.12345678")
    add_asset("ETH", "3100.5")
    add_asset("NOPRICE", None)
    user = make_user("hot_reader", "2500.10")
    accounts.deposit(user, "12.34")
    accounts.withdraw(user, "0.01")
    trading.place_order(user, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.0012345"})
    trading.place_order(user, {"order_type": "market_buy", "asset_id": "ETH", "quantity": "0.25"})
    trading.place_order(user, {"order_type": "market_sell", "asset_id": "ETH", "quantity": "0.25"})
    set_price("BTC", None)  # a holding whose asset has no price now: NULL through the outer join

    balance = _same(accounts._BALANCE, {"username": user})
    assert len(balance) == 1 and isinstance(balance[0]["cash"], Decimal)
    moves = _same(accounts._TODAY_MOVES, {"username": user, "since": accounts._day_start(datetime.now(timezone.utc))})
    assert sorted(row["entry_type"] for row in moves) == ["deposit", "deposit", "withdraw"]
    holdings = _same(portfolio._HOLDINGS, {"username": user})
    assert [row["asset_id"] for row in holdings] == ["BTC", "ETH"]
    assert holdings[0]["asset_price"] is None and holdings[1]["quantity"] == 0
    _same(portfolio._ACCOUNT, {"username": user})

    with write_session() as session:
        row = session.exec(sqlmodel_select(User).where(User.username == user)).one()
        jti = sessions.issue_token(session, row, datetime.now(timezone.utc), user_agent="tests", ip=None).jti
    (session_row,) = _same(sessions._SESSION_AND_USER, {"jti": jti})
    assert session_row["username"] == user and session_row["revoked_at"] is None
    # No such row: none, as `.first()` gives.
    with read_connection() as conn:
        assert accounts._BALANCE.first(conn, {"username": "nobody_here"}) is None
        assert sessions._SESSION_AND_USER.rows(conn, {"jti": "no-such-session"}) == []


def test_a_driver_error_is_sqlalchemys(any_db: str) -> None:
    missing = HotQuery(select(table("no_such_table", column("x"))).where(column("x") == bindparam("x")))
    with read_connection() as conn, pytest.raises(DBAPIError):
        missing.rows(conn, {"x": 1})


def test_expanding_parameters_are_refused(cnop_env: object) -> None:
    # An IN list is re-rendered per execution: not a fixed statement.
    statement = select(Asset.__table__.c.id).where(Asset.__table__.c.id.in_(bindparam("ids", expanding=True)))  # type: ignore[attr-defined]
    with read_connection() as conn, pytest.raises(ValueError, match="expanding"):
        HotQuery(statement).rows(conn, {"ids": ["BTC"]})


def test_reads_of_one_connection_share_a_snapshot_on_sqlite(cnop_env: object) -> None:
    """As with `conn.execute`, the first hot read opens the read transaction: a request's
    authentication and its reads see one state of the database even if a write commits between."""
    user = make_user("snapshot_reader", "100")
    with read_connection() as conn:
        before = accounts._BALANCE.first(conn, {"username": user})
        fund(user, "5")  # another connection commits meanwhile
        again = accounts._BALANCE.first(conn, {"username": user})
    assert before is not None and again is not None and again.cash == before.cash == Decimal("100")
    with read_connection() as conn:
        after = accounts._BALANCE.first(conn, {"username": user})
    assert after is not None and after.cash == Decimal("105")


def test_hot_reads_take_the_driver_path_unless_someone_listens(any_db: str) -> None:
    """In the app's own configuration (only `UnitOfWork`'s change counter listening, on PostgreSQL)
    hot reads skip SQLAlchemy's execution path; a statement log or a tracer sees them, through it."""
    user = make_user("observed_reader", "10")
    with read_connection() as conn:
        assert not hot_query._observed(conn)
    with statements_on(read_engine()) as seen:
        with read_connection() as conn:
            row = accounts._BALANCE.first(conn, {"username": user})
    assert row is not None and row.cash == Decimal("10") and type(row).__name__ == "HotRow"
    assert len([s for s in seen if "FROM accounts" in s]) == 1


_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
_COLUMNS = ("entity", "entity_key", "operation", "payload", "created_at", "attempts")


def _outbox_rows(keys: list[str]) -> list[dict[str, Any]]:
    when = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone.utc)
    return [
        {
            "entity": "ledger",
            "entity_key": key,
            "operation": "upsert",
            "payload": '{"a": "1.50", "b": "ü"}',
            "created_at": when,
            "attempts": 0,
        }
        for key in keys
    ]


def _stored(keys: list[str]) -> list[tuple[Any, ...]]:
    """The rows of these keys as the database holds them (text of the times on SQLite), without their ids."""
    names = ", ".join(column for column in _COLUMNS if column != "entity_key")
    query = text(f"SELECT {names} FROM outbox WHERE entity_key = :key")
    with write_engine().connect() as conn:
        return [tuple(row) for key in keys for row in conn.execute(query, {"key": key})]


def test_hot_insert_stores_what_sqlalchemys_insert_stores(any_db: str) -> None:
    hot = HotInsert(_OUTBOX, _COLUMNS)
    with write_session() as session:
        conn = session.connection()
        hot.execute(conn, _outbox_rows(["hot-1", "hot-2"]))
        conn.execute(insert(_OUTBOX), _outbox_rows(["usual-1", "usual-2"]))
        session.commit()
    hot_rows, usual_rows = _stored(["hot-1", "hot-2"]), _stored(["usual-1", "usual-2"])
    assert hot_rows == usual_rows and len(hot_rows) == 2
    with write_engine().connect() as conn:
        ids = conn.execute(text("SELECT id FROM outbox WHERE entity_key LIKE 'hot-%' ORDER BY id")).scalars().all()
    assert len(ids) == 2 and ids[0] < ids[1]  # numbered in the order given, as the drainer reads them


def test_hot_insert_counts_as_a_change_and_rolls_back_with_its_transaction(any_db: str) -> None:
    """The unit of work decides from its count of changed statements whether a refused order can stay
    in its batch: the driver-path insert must be counted, and it is part of the transaction."""
    hot = HotInsert(_OUTBOX, _COLUMNS)
    with write_session() as session:
        conn = session.connection()
        before = db._changes(conn)
        hot.execute(conn, _outbox_rows(["rolled-back"]))
        assert db._changes(conn) == before + 1
        session.rollback()
    assert _stored(["rolled-back"]) == []


def test_a_hot_insert_error_is_sqlalchemys(any_db: str) -> None:
    hot = HotInsert(_OUTBOX, _COLUMNS)
    row = {**_outbox_rows(["no-payload"])[0], "payload": None}  # NOT NULL
    with write_session() as session, pytest.raises(IntegrityError):
        hot.execute(session.connection(), [row])
    assert _stored(["no-payload"]) == []


def test_an_observed_hot_insert_takes_sqlalchemys_path(any_db: str) -> None:
    with statements_on(write_engine()) as seen:
        with write_session() as session:
            HotInsert(_OUTBOX, _COLUMNS).execute(session.connection(), _outbox_rows(["seen-1", "seen-2"]))
            session.commit()
    assert len(_stored(["seen-1", "seen-2"])) == 2
    assert [s for s in seen if s.startswith("INSERT INTO outbox")]
