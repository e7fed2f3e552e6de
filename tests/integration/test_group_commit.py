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
from sqlmodel import select

from cnop_app.db import UnitOfWork, read_session, run_batch
from cnop_app.domain.errors import BusinessRuleViolation, ValidationFailed
from cnop_app.models import Order
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import trading
from cnop_app.services.trading import OrderView
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
