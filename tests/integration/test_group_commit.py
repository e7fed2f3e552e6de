"""Group commit (`db.run_batch`): many orders in one transaction, each with its own result or error.

On SQLite and (under `make test`) PostgreSQL: a refused order in the middle of a batch writes nothing
and does not disturb the others; a retried client_order_id returns the first order; only committed
orders are counted; the ledger still replays to every balance.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert
from sqlmodel import select

from cnop_app.db import UnitOfWork, read_session, run_batch, write_engine, write_session
from cnop_app.domain.enums import LedgerType
from cnop_app.domain.errors import BusinessRuleViolation, ValidationFailed
from cnop_app.models import Order
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import accounts, trading
from cnop_app.services.trading import OrderView
from tests.support.helpers import statements_on
from tests.support.trading_fixtures import account_of, add_asset, check_invariants, holding_of, make_user


def _completed(order_type: str) -> float:
    labels = {"order_type": order_type, "status": "completed"}
    return REGISTRY.get_sample_value("cnop_orders_total", labels) or 0.0


def _order(user: str, side: str, quantity: str, **extra: str) -> Callable[[UnitOfWork], OrderView]:
    data: dict[str, Any] = {"order_type": f"market_{side}", "asset_id": "BTC", "quantity": quantity, **extra}
    return lambda uow: trading.place_order(user, data, uow=uow)


def test_a_batch_commits_its_good_orders_and_refuses_the_others_cleanly(any_db: str) -> None:
    add_asset("BTC", "100")
    alice = make_user("alice_01", "500")
    bob = make_user("bob_0001", "50")
    first = trading.place_order(
        alice, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1", "client_order_id": "c-1"}
    )
    bought = _completed("market_buy")
    outcomes = run_batch(
        [
            _order(alice, "buy", "1"),  # ok: 100
            _order(bob, "buy", "1"),  # refused: bob has 50
            _order(alice, "sell", "5"),  # refused: alice holds 2 at this point
            _order(alice, "buy", "1", client_order_id="c-1"),  # a retry: the first order, nothing new
            _order(bob, "buy", "0.25"),  # ok: 25
            _order(alice, "buy", "abc"),  # refused: not a quantity
            _order(alice, "sell", "0.5"),  # ok
        ]
    )
    oks = [ok for ok, _ in outcomes]
    assert oks == [True, False, False, True, True, False, True]
    assert isinstance(outcomes[1][1], BusinessRuleViolation) and isinstance(outcomes[2][1], BusinessRuleViolation)
    assert isinstance(outcomes[5][1], ValidationFailed)
    assert outcomes[3][1].order_id == first.order_id
    assert account_of(alice).cash == Decimal("500") - 200 + 50
    assert account_of(bob).cash == Decimal("25.00")
    alice_btc, bob_btc = holding_of(alice, "BTC"), holding_of(bob, "BTC")
    assert alice_btc is not None and alice_btc.quantity == Decimal("1.5")
    assert bob_btc is not None and bob_btc.quantity == Decimal("0.25")
    with read_session() as session:
        assert len(session.exec(select(Order)).all()) == 4  # the first + three new; no refused order stored
    assert _completed("market_buy") == bought + 2  # counted once committed; the retry is not counted
    check_invariants()


def test_a_failed_commit_fails_every_order_of_the_batch(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add_asset("BTC", "100")
    alice = make_user("alice_01", "500")

    def broken_commit(self: UnitOfWork) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(UnitOfWork, "commit", broken_commit)
    outcomes = run_batch([_order(alice, "buy", "1"), _order(alice, "buy", "1")])
    assert [ok for ok, _ in outcomes] == [False, False]
    assert all(isinstance(error, RuntimeError) for _, error in outcomes)
    monkeypatch.undo()
    assert account_of(alice).cash == Decimal("500.00")
    assert holding_of(alice, "BTC") is None
    check_invariants()


def test_a_batch_takes_no_savepoint_when_its_refusals_wrote_nothing(any_db: str) -> None:
    add_asset("BTC", "100")
    alice = make_user("alice_01", "500")
    with statements_on(write_engine()) as seen:
        outcomes = run_batch([_order(alice, "buy", "1"), _order(alice, "sell", "9"), _order(alice, "buy", "0.5")])
    assert [ok for ok, _ in outcomes] == [True, False, True]
    assert not [s for s in seen if "SAVEPOINT" in s.upper()]  # two round trips per order saved
    # Two reads per order: the account lock, then the price and the holding together.
    assert len([s for s in seen if s.startswith("SELECT")]) == 6
    # A fill's five writes: one statement on PostgreSQL (data-modifying CTEs), five on SQLite.
    writes = [s for s in seen if not s.startswith(("SELECT", "BEGIN"))]
    assert len(writes) == (2 if any_db == "postgresql" else 10)
    assert account_of(alice).cash == Decimal("350.00")
    check_invariants()


def _deposit_then_refuse(user: str) -> Callable[[UnitOfWork], None]:
    def work(uow: UnitOfWork) -> None:
        with write_session(uow) as session:
            account = accounts.lock_account(session, user)
            accounts.post_entry(session, account, LedgerType.DEPOSIT, Decimal("1000"), reference="half-done")
            session.flush()
            raise BusinessRuleViolation("refused after writing", "amount")

    return work


def _duplicate_order_row(user: str) -> Callable[[UnitOfWork], None]:
    """A statement that fails mid-transaction (a primary key taken): PostgreSQL aborts the transaction."""

    def work(uow: UnitOfWork) -> None:
        with write_session(uow) as session:
            first = session.exec(select(Order).where(Order.username == user)).first()
            assert first is not None
            session.connection().execute(insert(Order.__table__), [{**first.model_dump()}])  # type: ignore[attr-defined]

    return work


@pytest.mark.parametrize("bad", [_deposit_then_refuse, _duplicate_order_row])
def test_a_work_that_fails_after_writing_is_undone_and_the_batch_redone(
    any_db: str, bad: Callable[[str], Callable[[UnitOfWork], None]]
) -> None:
    add_asset("BTC", "100")
    alice = make_user("alice_01", "500")
    bob = make_user("bob_0001", "50")
    trading.place_order(alice, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.1"})
    bought = _completed("market_buy")
    outcomes = run_batch(
        [
            _order(alice, "buy", "1"),  # ok
            _order(bob, "buy", "1"),  # refused cleanly (bob has 50): its answer stands
            bad(alice),  # fails after changing something: undone, the batch redone with savepoints
            _order(bob, "buy", "0.25"),  # ok
        ]
    )
    assert [ok for ok, _ in outcomes] == [True, False, False, True]
    assert isinstance(outcomes[1][1], BusinessRuleViolation)
    assert account_of(alice).cash == Decimal("500") - 10 - 100
    assert account_of(bob).cash == Decimal("25.00")
    with read_session() as session:
        assert len(session.exec(select(Order)).all()) == 3
    assert _completed("market_buy") == bought + 2  # each committed order counted once
    check_invariants()


def test_a_limit_orders_orm_writes_are_its_own_not_the_next_refusals(any_db: str) -> None:
    """A limit order writes through the ORM: its rows are flushed when it returns, so the refusal after
    it still finds the transaction as it left it and the batch needs no redo (no SAVEPOINT at all)."""
    add_asset("BTC", "100")
    alice = make_user("alice_01", "500")
    limit = {"order_type": "limit_buy", "asset_id": "BTC", "quantity": "1", "price": "90"}
    with statements_on(write_engine()) as seen:
        outcomes = run_batch([lambda uow: trading.place_order(alice, limit, uow=uow), _order(alice, "sell", "9")])
    assert [ok for ok, _ in outcomes] == [True, False]
    assert not [s for s in seen if "SAVEPOINT" in s.upper()]
    assert account_of(alice).held > 0
    check_invariants()
