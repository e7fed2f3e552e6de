"""Cash accounts: amount rules, daily limits, ledger invariant, idempotency, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlmodel import select

from cnop_app.config import reset_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import BusinessRuleViolation, ValidationFailed
from cnop_app.models import LedgerEntry
from cnop_app.services import accounts, auth
from tests.support.helpers import user_payload


@pytest.fixture
def alice(cnop_env: object) -> str:
    auth.register(user_payload("alice_01"))
    return "alice_01"


@pytest.mark.parametrize("amount", ["0", "-5", "0.001", "1000000.01", "abc", "", "NaN", "Infinity", None, True, [1]])
def test_bad_amounts_are_refused_and_change_nothing(alice: str, amount: object) -> None:
    with pytest.raises(ValidationFailed) as err:
        accounts.deposit(alice, amount)
    assert err.value.field == "amount"
    assert accounts.get_balance(alice).current_balance == 0
    assert accounts.list_transactions(alice)[1] == 0


def test_deposit_withdraw_and_ledger_invariant(alice: str) -> None:
    accounts.deposit(alice, "100.10")
    accounts.deposit(alice, 50)
    accounts.withdraw(alice, "0.10")
    balance = accounts.get_balance(alice)
    assert balance.current_balance == Decimal("150.00")
    assert accounts.ledger_sum(alice) == balance.current_balance
    rows, total = accounts.list_transactions(alice)
    assert total == 3
    assert [r.transaction_type for r in rows] == ["withdraw", "deposit", "deposit"]  # newest first
    assert rows[0].amount == Decimal("-0.10") and rows[0].balance_after == Decimal("150.00")


def test_overdraw_names_the_shortfall_and_writes_nothing(alice: str) -> None:
    accounts.deposit(alice, "40")
    with pytest.raises(BusinessRuleViolation, match=r"short by \$10.00"):
        accounts.withdraw(alice, "50")
    assert accounts.get_balance(alice).current_balance == Decimal("40")
    assert accounts.list_transactions(alice)[1] == 1


def test_daily_limits_per_utc_day(alice: str, monkeypatch) -> None:
    monkeypatch.setenv("CNOP_DAILY_DEPOSIT_LIMIT", "1000")
    monkeypatch.setenv("CNOP_DAILY_WITHDRAW_LIMIT", "300")
    reset_settings()
    accounts.deposit(alice, "600")
    with pytest.raises(BusinessRuleViolation, match=r"\$400.00 remaining"):
        accounts.deposit(alice, "400.01")
    accounts.deposit(alice, "400")
    accounts.withdraw(alice, "300")
    with pytest.raises(BusinessRuleViolation, match="withdraw limit"):
        accounts.withdraw(alice, "0.01")
    allowance = accounts.allowance(alice)
    assert allowance.deposit_remaining == 0 and allowance.withdraw_remaining == 0
    # Yesterday's activity does not count against today.
    with write_session() as session:
        for entry in session.exec(select(LedgerEntry).where(LedgerEntry.username == alice)).all():
            entry.created_at = datetime.now(timezone.utc) - timedelta(days=1)
            session.add(entry)
    accounts.withdraw(alice, "300")
    assert accounts.allowance(alice).withdraw_remaining == 0


def test_idempotency_key_replays_first_result(alice: str) -> None:
    first = accounts.deposit(alice, "25.00", "key-1")
    again = accounts.deposit(alice, "25.00", "key-1")
    assert again == first
    assert accounts.get_balance(alice).current_balance == Decimal("25.00")
    with pytest.raises(ValidationFailed) as err:
        accounts.deposit(alice, "26.00", "key-1")
    assert err.value.field == "Idempotency-Key"
    # Keys are per operation: the same key on a withdrawal is a different request.
    accounts.withdraw(alice, "5", "key-1")
    assert accounts.get_balance(alice).current_balance == Decimal("20.00")


def test_concurrent_deposits_and_withdrawals_lose_nothing(any_db: str) -> None:
    auth.register(user_payload("racer_01"))
    accounts.deposit("racer_01", "1000")
    threads, per_thread = 8, 25
    refused = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for j in range(per_thread):
            try:
                if (i + j) % 2:
                    accounts.withdraw("racer_01", "7.50")
                else:
                    accounts.deposit("racer_01", "5.25")
            except BusinessRuleViolation:
                with lock:
                    refused.append((i, j))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    balance = accounts.get_balance("racer_01").current_balance
    assert balance >= 0
    assert balance == accounts.ledger_sum("racer_01")
    with read_session() as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.username == "racer_01")).all()
    assert len(entries) == 1 + threads * per_thread - len(refused)
    # Replaying the ledger in order reproduces every balance_after: no lost update.
    running = Decimal(0)
    for entry in sorted(entries, key=lambda e: e.id or 0):
        running += entry.amount
        assert entry.balance_after == running
        assert running >= 0


def test_concurrent_retries_with_one_key_execute_once(any_db: str) -> None:
    auth.register(user_payload("retry_01"))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: accounts.deposit("retry_01", "10", "same-key"), range(16)))
    assert len({r.transaction_id for r in results}) == 1
    assert accounts.get_balance("retry_01").current_balance == Decimal("10")
