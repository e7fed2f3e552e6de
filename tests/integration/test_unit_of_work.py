"""The unit of work: services share one transaction when the caller passes one, and nothing is kept
unless it is committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, create_engine, func, select

from cnop_app.config import get_settings
from cnop_app.db import SQLITE_BUSY_TIMEOUT_MS, UnitOfWork, WriterBusy, read_session
from cnop_app.domain.errors import BusinessRuleViolation
from cnop_app.models import Account, AuditEvent, AuthSession, LedgerEntry, User
from cnop_app.observability.metrics import AUTH_EVENTS, CASH_MOVES, ORDERS, REGISTRY
from cnop_app.read_path import read_connection
from cnop_app.services import accounts, auth, trading
from tests.support.helpers import (
    STRONG_PASSWORD,
    another_thread_writing,
    sqlite_write_lock_in_another_process,
    user_payload,
)
from tests.support.trading_fixtures import add_asset, make_user


def _count(model: type[SQLModel]) -> int:
    with read_session() as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_register_then_login_in_one_unit_of_work(any_db: str) -> None:
    with UnitOfWork() as uow:
        auth.register(user_payload("bob_0001"), uow=uow)
        token = auth.login("bob_0001", STRONG_PASSWORD, uow=uow)
        with read_session() as other:  # not visible outside the transaction before the commit
            assert other.exec(select(User).where(User.username == "bob_0001")).first() is None
        uow.commit()
    assert auth.authenticate(token.access_token).username == "bob_0001"
    assert _count(AuthSession) == 1


def test_nothing_is_kept_unless_committed(any_db: str) -> None:
    logins = _sample("cnop_logins_total", outcome="success")
    with UnitOfWork() as uow:
        auth.register(user_payload("carol_001"), uow=uow)
        auth.login("carol_001", STRONG_PASSWORD, uow=uow)
    # Left without commit: user, account, session and audit rows are all gone, and nothing was counted.
    for model in (User, Account, AuthSession, AuditEvent):
        assert _count(model) == 0, model
    assert _sample("cnop_logins_total", outcome="success") == logins


def test_an_error_in_the_second_service_undoes_the_first(any_db: str) -> None:
    make_user("dave_0001", "100")
    with pytest.raises(BusinessRuleViolation):
        with UnitOfWork() as uow:
            accounts.deposit("dave_0001", "50", uow=uow)
            accounts.withdraw("dave_0001", "500", uow=uow)  # more than the 150 it would have
            uow.commit()
    assert accounts.get_balance("dave_0001").current_balance == Decimal("100.00")
    assert accounts.ledger_sum("dave_0001") == Decimal("100.00")


def test_metrics_count_service_calls_whoever_makes_them(cnop_env: Path) -> None:
    """UI states call the services directly: their orders, cash moves and logins count too."""
    make_user("erin_0001", "1000")
    add_asset("BTC", "100")
    deposits = _sample("cnop_cash_moves_total", kind="deposit")
    filled = _sample("cnop_orders_total", order_type="market_buy", status="completed")
    rejected = _sample("cnop_orders_total", order_type="market_buy", status="rejected")
    accounts.deposit("erin_0001", "10")
    trading.place_order("erin_0001", {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1"})
    with pytest.raises(BusinessRuleViolation):
        trading.place_order("erin_0001", {"order_type": "market_buy", "asset_id": "BTC", "quantity": "50"})
    assert _sample("cnop_cash_moves_total", kind="deposit") == deposits + 1
    assert _sample("cnop_orders_total", order_type="market_buy", status="completed") == filled + 1
    assert _sample("cnop_orders_total", order_type="market_buy", status="rejected") == rejected + 1
    # An idempotent retry returns the first order and is not counted again.
    data = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1", "client_order_id": "once"}
    trading.place_order("erin_0001", data)
    trading.place_order("erin_0001", data)
    assert _sample("cnop_orders_total", order_type="market_buy", status="completed") == filled + 2
    assert CASH_MOVES and ORDERS and AUTH_EVENTS  # the counters the API used to increment itself


@pytest.fixture
def memory_engine() -> Iterator[object]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_services_run_against_an_in_memory_unit_of_work(cnop_env: Path, memory_engine: object) -> None:
    """A service test can hand the services a unit of work on a throwaway in-memory database."""
    with UnitOfWork(memory_engine) as uow:  # type: ignore[arg-type]
        auth.register(user_payload("fay_00001"), uow=uow)
        accounts.deposit("fay_00001", "25.50", uow=uow)
        uow.commit()
    with UnitOfWork(memory_engine) as uow:  # type: ignore[arg-type]
        entries = uow.session.exec(select(LedgerEntry)).all()
        assert [(e.entry_type, e.amount) for e in entries] == [("deposit", Decimal("25.50"))]
    assert _count(User) == 0  # the configured database was never touched


def test_hot_reads_open_no_transaction_on_postgresql_and_share_a_snapshot_on_sqlite(any_db: str) -> None:
    """`read_connection` (the session check and the hot reads of every request): on PostgreSQL no
    BEGIN/ROLLBACK round trips; the pooled connection is transactional again for the next writer."""
    make_user("alice_01", "10")
    with read_connection() as conn:
        assert conn.execute(select(Account.cash).where(Account.username == "alice_01")).scalar() == Decimal("10.00")
        driver = conn.connection.driver_connection
        if any_db == "postgresql":
            assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        else:
            assert driver.in_transaction  # SQLite: the request's reads see one snapshot
    with UnitOfWork() as uow:
        accounts.deposit("alice_01", "5", None, uow=uow)  # rolled back: not committed
    assert _count(LedgerEntry) == 1


def test_a_unit_that_must_not_wait_is_refused_at_once_while_another_thread_or_process_writes(
    cnop_env: Path,
) -> None:
    """`UnitOfWork(wait=False)` (the event loop's group commit): WriterBusy, and nothing done, while the
    writer is busy in this process or another, instead of waiting up to the 30 s busy timeout."""
    make_user("bob_0001", "10")

    def try_now() -> BaseException | None:
        outcome: list[BaseException | None] = []

        def attempt() -> None:
            try:
                with UnitOfWork(wait=False) as uow:
                    accounts.deposit("bob_0001", "1", uow=uow)
                    uow.commit()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        runner = threading.Thread(target=attempt)
        runner.start()
        runner.join(5)  # a unit that waited would still be waiting
        assert outcome, "UnitOfWork(wait=False) waited for the writer"
        return outcome[0]

    with another_thread_writing():
        assert isinstance(try_now(), WriterBusy)
    with sqlite_write_lock_in_another_process(get_settings().database_url):
        assert isinstance(try_now(), WriterBusy)
    assert try_now() is None  # free again: it writes, and waits as usual afterwards
    assert accounts.get_balance("bob_0001").current_balance == Decimal("11")
    with UnitOfWork(wait=False) as uow:
        assert uow.session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
