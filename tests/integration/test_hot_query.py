"""`hot_query.HotQuery`: the hot path's fixed reads, run on the driver's cursor, return exactly what SQLAlchemy's
`conn.execute` returns for the same statement (values, types, column names), on SQLite and PostgreSQL.
`hot_query.HotWrite` (the outbox rows of every order) stores exactly what SQLAlchemy's insert stores."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import bindparam, column, insert, select, table, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import select as sqlmodel_select

from cnop_app import db, hot_query
from cnop_app.config import reset_settings
from cnop_app.db import read_engine, write_engine, write_session
from cnop_app.hot_query import HotQuery, HotWrite
from cnop_app.models import Account, Asset, AssetTransaction, Holding, LedgerEntry, Order, Outbox, User
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
    hot = HotWrite(insert(_OUTBOX))
    with write_session() as session:
        conn = session.connection()
        hot.executemany(conn, _outbox_rows(["hot-1", "hot-2"]))
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
    hot = HotWrite(insert(_OUTBOX))
    with write_session() as session:
        conn = session.connection()
        before = db._changes(conn)
        hot.executemany(conn, _outbox_rows(["rolled-back"]))
        assert db._changes(conn) == before + 1
        session.rollback()
    assert _stored(["rolled-back"]) == []


def test_a_hot_insert_error_is_sqlalchemys(any_db: str) -> None:
    hot = HotWrite(insert(_OUTBOX))
    row = {**_outbox_rows(["no-payload"])[0], "payload": None}  # NOT NULL
    with write_session() as session, pytest.raises(IntegrityError):
        hot.executemany(session.connection(), [row])
    assert _stored(["no-payload"]) == []


def test_an_observed_hot_insert_takes_sqlalchemys_path(any_db: str) -> None:
    with statements_on(write_engine()) as seen:
        with write_session() as session:
            HotWrite(insert(_OUTBOX)).executemany(session.connection(), _outbox_rows(["seen-1", "seen-2"]))
            session.commit()
    assert len(_stored(["seen-1", "seen-2"])) == 2
    assert [s for s in seen if s.startswith("INSERT INTO outbox")]


def _raw_rows(model: Any, username: str) -> list[tuple[Any, ...]]:
    """A user's rows of `model` as the database stores them (SQLite: the text of decimals and times),
    without what differs between two users' orders: ids and the user's name are dropped, and times are
    kept as their shape (every digit a 9)."""
    table_ = model.__table__
    dropped = {"id", "username", "order_id", "transaction_id", "reference"}
    names = [c.name for c in table_.columns if c.name not in dropped]
    order = "id" if "id" in table_.c else names[0]
    query = text(f"SELECT {', '.join(names)} FROM {table_.name} WHERE username = :u ORDER BY {order}")
    with write_engine().connect() as conn:
        rows = conn.execute(query, {"u": username}).all()
    return [
        tuple(
            re.sub(r"\d", "9", str(v)) if isinstance(table_.c[n].type, db.UTCDateTime) else v
            for n, v in zip(names, row, strict=True)
        )
        for row in rows
    ]


def test_a_market_order_stores_the_same_rows_on_the_driver_as_through_sqlalchemy(
    any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order's reads and writes run on the driver (`HotQuery`, `HotWrite`); with a statement log
    on the engine they take SQLAlchemy's path. Both store the same rows, byte for byte on SQLite: a
    buy that opens a holding (an insert, two ledger entries with the fee) and a sell that updates it."""
    monkeypatch.setenv("CNOP_FEE_BPS", "25")
    reset_settings()
    add_asset("ETH", "3100.5")
    hot_user, usual_user = make_user("driver_path", "5000"), make_user("sqlalchemy_path", "5000")

    def trade(user: str) -> None:
        trading.place_order(user, {"order_type": "market_buy", "asset_id": "ETH", "quantity": "0.3"})
        trading.place_order(user, {"order_type": "market_sell", "asset_id": "ETH", "quantity": "0.1"})

    trade(hot_user)
    with statements_on(write_engine()) as seen:
        trade(usual_user)
    assert any("INSERT INTO asset_transactions" in s for s in seen)  # it did take SQLAlchemy's path
    for model in (Account, LedgerEntry, Holding, Order, AssetTransaction):
        hot, usual = _raw_rows(model, hot_user), _raw_rows(model, usual_user)
        assert hot == usual, model.__name__
        assert hot, model.__name__
    assert len(_raw_rows(LedgerEntry, hot_user)) == 4 + 1  # the funding deposit, then payment + fee, sale + fee


_CASH = Account.__table__  # type: ignore[attr-defined]


def test_hot_write_reports_rows_and_ids_and_refuses_what_it_cannot_do(any_db: str) -> None:
    user = make_user("hot_writer", "10")
    update_cash = HotWrite(
        update(_CASH).where(_CASH.c.username == bindparam("b_username")).values(cash=bindparam("cash"))
    )
    with write_session() as session:
        conn = session.connection()
        assert update_cash.execute(conn, {"b_username": user, "cash": Decimal("11.5")}).rowcount == 1
        assert update_cash.execute(conn, {"b_username": "nobody", "cash": Decimal("1")}).rowcount == 0
        plain = insert(_OUTBOX)
        written = HotWrite(plain).execute(conn, _outbox_rows(["with-id"])[0])
        assert written.rowcount == 1
        if conn.dialect.name == "sqlite":
            stored = conn.execute(text("SELECT id FROM outbox WHERE entity_key = 'with-id'")).scalar_one()
            assert written.lastrowid == stored
        # RETURNING: its first row, as HotQuery returns rows. Made from the statement planned above on
        # purpose: a copy of a statement SQLAlchemy has answered `exported_columns` for keeps the
        # empty answer, which once made this come back as None.
        returning = HotWrite(plain.returning(_OUTBOX.c.id, _OUTBOX.c.created_at))
        returned = returning.execute(conn, _outbox_rows(["returned"])[0]).returned
        stored = conn.execute(text("SELECT id FROM outbox WHERE entity_key = 'returned'")).scalar_one()
        assert (
            returned is not None
            and returned.id == stored
            and returned.created_at == _outbox_rows(["x"])[0]["created_at"]
        )
        with pytest.raises(ValueError, match="same columns"):
            HotWrite(insert(_OUTBOX)).executemany(conn, [_outbox_rows(["a"])[0], {"entity": "ledger"}])
        # created_at's default is a Python function (the time now): SQLAlchemy runs it per execution,
        # a compiled plan cannot, so the column must be given.
        no_time = {k: v for k, v in _outbox_rows(["no-time"])[0].items() if k != "created_at"}
        with pytest.raises(ValueError, match="created_at"):
            HotWrite(insert(_OUTBOX)).execute(conn, no_time)
        session.commit()
    with read_connection() as conn:
        assert accounts._BALANCE.first(conn, {"username": user}).cash == Decimal("11.5")
