"""Many threads trading on one account at once, on a real SQLite file and (under `make test`) PostgreSQL.

No lost update, no negative cash or quantity, ledger replay equals stored balances, and every
refusal is a clean business error (never "database is locked", a deadlock or a half-written order).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from decimal import Decimal

from cnop_app.domain.errors import BusinessRuleViolation, Conflict
from cnop_app.services import accounts, trading
from cnop_app.services.admin import verify_ledger
from tests.support.trading_fixtures import account_of, add_asset, check_invariants, holding_of, make_user, set_price

THREADS = 8
ORDERS_PER_THREAD = 25


def _run_threads(target, count: int) -> list[BaseException]:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def wrapper(index: int) -> None:
        try:
            start.wait()
            target(index)
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a trading thread hung"
    return errors


def test_concurrent_buys_and_sells_on_one_account(any_db: str) -> None:
    add_asset("BTC", "100")
    add_asset("ETH", "10")
    user = make_user("alice_01", "3000")
    other = make_user("bob_0001", "3000")  # trades at the same time on a different account
    trading.place_order(user, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "5"})
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def trader(index: int) -> None:
        rng = random.Random(index)
        who = other if index == THREADS else user
        pending: list[str] = []
        for _ in range(ORDERS_PER_THREAD):
            kind = rng.choice(["market_buy", "market_sell", "market_sell", "limit_buy", "limit_sell", "cancel"])
            asset = rng.choice(["BTC", "ETH"])
            quantity = str(Decimal(rng.randint(1, 3000)) / 1000)
            try:
                if kind == "cancel":
                    if not pending:
                        continue
                    trading.cancel_order(who, pending.pop())
                else:
                    data = {"order_type": kind, "asset_id": asset, "quantity": quantity}
                    if kind.startswith("limit_"):
                        data["price"] = "95" if kind == "limit_buy" else "105"
                        if asset == "ETH":
                            data["price"] = "9.5" if kind == "limit_buy" else "10.5"
                    order = trading.place_order(who, data)
                    if order.status == "pending":
                        pending.append(order.order_id)
                result = "ok"
            except BusinessRuleViolation:
                result = "refused"
            except Conflict:
                result = "already filled"  # the matcher filled it first
            with lock:
                outcomes[result] += 1

    def matcher(_index: int) -> None:
        rng = random.Random(99)
        for _ in range(15):
            set_price("BTC", rng.choice(["90", "100", "110"]))
            set_price("ETH", rng.choice(["9", "10", "11"]))
            trading.match_limit_orders()

    def worker(index: int) -> None:
        if index == THREADS + 1:
            matcher(index)
        else:
            trader(index)

    errors = _run_threads(worker, THREADS + 2)
    assert not errors, errors
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0, outcomes
    check_invariants()
    for who in (user, other):
        account = account_of(who)
        assert accounts.ledger_sum(who) == account.cash
        assert account.cash >= account.held >= 0
        for asset in ("BTC", "ETH"):
            holding = holding_of(who, asset)
            assert holding is None or holding.quantity >= holding.held_quantity >= 0
    report = verify_ledger()  # the integrity check (`manage verify-ledger`) agrees
    assert report.ok, report.lines()


def test_concurrent_buys_cannot_overspend(any_db: str) -> None:
    """Each buy alone fits the cash; together they do not: exactly as many succeed as the cash allows."""
    add_asset("BTC", "100")
    user = make_user("alice_01", "1000")
    results: list[str] = []

    def buyer(_index: int) -> None:
        for _ in range(3):
            try:
                trading.place_order(user, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1"})
                results.append("ok")
            except BusinessRuleViolation:
                results.append("refused")

    errors = _run_threads(buyer, THREADS)
    assert not errors, errors
    assert results.count("ok") == 10 and results.count("refused") == THREADS * 3 - 10
    assert account_of(user).cash == 0
    holding = holding_of(user, "BTC")
    assert holding is not None and holding.quantity == 10
    check_invariants()
    report = verify_ledger()  # the integrity check (`manage verify-ledger`) agrees
    assert report.ok, report.lines()


def test_concurrent_sells_cannot_oversell(any_db: str) -> None:
    add_asset("BTC", "100")
    user = make_user("alice_01", "1000")
    trading.place_order(user, {"order_type": "market_buy", "asset_id": "BTC", "quantity": "5"})
    results: list[str] = []

    def seller(index: int) -> None:
        kind = "limit_sell" if index % 2 else "market_sell"
        for _ in range(2):
            try:
                data = {"order_type": kind, "asset_id": "BTC", "quantity": "1", "price": "200"}
                trading.place_order(user, data)
                results.append("ok")
            except BusinessRuleViolation:
                results.append("refused")

    errors = _run_threads(seller, THREADS)
    assert not errors, errors
    assert results.count("ok") == 5
    holding = holding_of(user, "BTC")
    assert holding is not None and holding.quantity - holding.held_quantity == 0
    check_invariants()
    report = verify_ledger()  # the integrity check (`manage verify-ledger`) agrees
    assert report.ok, report.lines()


def test_concurrent_retries_with_one_client_order_id_execute_once(any_db: str) -> None:
    add_asset("BTC", "100")
    user = make_user("alice_01", "1000")
    seen: list[str] = []

    def retry(_index: int) -> None:
        data = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "1", "client_order_id": "once"}
        seen.append(trading.place_order(user, data).order_id)

    errors = _run_threads(retry, THREADS)
    assert not errors, errors
    assert len(set(seen)) == 1 and len(seen) == THREADS
    assert account_of(user).cash == Decimal("900.00")
    check_invariants()
    report = verify_ledger()  # the integrity check (`manage verify-ledger`) agrees
    assert report.ok, report.lines()
