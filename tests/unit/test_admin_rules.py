"""Pure rules of the admin console and the account tools (no database)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from cnop_app.domain import admin as rules
from cnop_app.domain import trading
from cnop_app.domain.enums import Role
from cnop_app.domain.errors import BusinessRuleViolation, ValidationFailed
from cnop_app.domain.replay import HoldingState, apply_fill


@pytest.mark.parametrize("value", [None, "", "   ", 5, "x" * 501])
def test_a_reason_is_required_and_bounded(value: object) -> None:
    with pytest.raises(ValidationFailed) as err:
        rules.parse_reason(value)
    assert err.value.field == "reason"


def test_a_reason_is_one_trimmed_line() -> None:
    assert rules.parse_reason("  spam\n bot  account ") == "spam bot account"
    assert rules.parse_reason("x" * 500) == "x" * 500


@pytest.mark.parametrize("value", ["0", "0.00", "1.234", "1000000.01", "-1000000.01", "abc", None, True])
def test_bad_adjustments(value: object) -> None:
    with pytest.raises(ValidationFailed) as err:
        rules.parse_adjustment(value)
    assert err.value.field == "amount"


def test_adjustments_are_signed_cents() -> None:
    assert rules.parse_adjustment("-12.5") == Decimal("-12.50")
    assert rules.parse_adjustment(1000000) == Decimal("1000000.00")


@pytest.mark.parametrize("value", ["-0.01", "1000000.01", "1.001", "ten", None])
def test_bad_starting_cash(value: object) -> None:
    with pytest.raises(ValidationFailed) as err:
        rules.parse_starting_cash(value)
    assert err.value.field == "starting_cash"


def test_starting_cash_may_be_zero() -> None:
    assert rules.parse_starting_cash("0") == Decimal("0.00")
    assert rules.parse_starting_cash("10000") == Decimal("10000.00")


def test_roles() -> None:
    assert rules.parse_role(" Admin ") is Role.ADMIN
    with pytest.raises(ValidationFailed) as err:
        rules.parse_role("root")
    assert err.value.field == "role"


def test_the_last_active_admin_stays() -> None:
    with pytest.raises(BusinessRuleViolation, match="last active admin"):
        rules.require_admin_remains(1, target_is_active_admin=True, stays_active_admin=False)
    rules.require_admin_remains(2, target_is_active_admin=True, stays_active_admin=False)
    rules.require_admin_remains(1, target_is_active_admin=False, stays_active_admin=False)  # someone else
    rules.require_admin_remains(1, target_is_active_admin=True, stays_active_admin=True)


def test_sort_and_query() -> None:
    assert rules.parse_sort(None) == ("username", False)
    assert rules.parse_sort("-created_at") == ("created_at", True)
    with pytest.raises(ValidationFailed) as err:
        rules.parse_sort("password_hash")
    assert err.value.field == "sort"
    assert rules.parse_query("  ") is None
    assert rules.like_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%"
    with pytest.raises(ValidationFailed):
        rules.parse_query("x" * 101)


def test_periods() -> None:
    start, end = rules.parse_period("2026-01-05", "2026-01-05")
    assert start == datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert end == datetime(2026, 1, 6, tzinfo=timezone.utc)  # a date alone includes its day
    start, end = rules.parse_period("2026-01-05T10:00:00Z", None)
    assert start == datetime(2026, 1, 5, 10, tzinfo=timezone.utc) and end is None
    bad = (("yesterday", None, "since"), (None, "2026-13-01", "until"), ("2026-01-06", "2026-01-05", "until"))
    for since, until, field in bad:
        with pytest.raises(ValidationFailed) as err:
            rules.parse_period(since, until)
        assert err.value.field == field


def test_replay_matches_the_fill_arithmetic() -> None:
    state = apply_fill(HoldingState(), "BUY", Decimal("2"), Decimal("200.00"), Decimal("0.60"))
    assert state.quantity == 2 and state.average_cost == Decimal("100.3")
    state = apply_fill(state, "BUY", Decimal("1"), Decimal("130.00"), Decimal("0.39"))
    expected = trading.average_cost_after_buy(Decimal("100.3"), Decimal("2"), Decimal("1"), Decimal("130.39"))
    assert state.average_cost == expected
    state = apply_fill(state, "SELL", Decimal("1"), Decimal("150.00"), Decimal("0.45"))
    assert state.realized_pnl == trading.realized_on_sell(expected, Decimal("1"), Decimal("150.00"), Decimal("0.45"))
    state = apply_fill(state, "SELL", Decimal("2"), Decimal("300.00"), Decimal("0.90"))
    assert state.quantity == 0 and state.average_cost == 0  # a closed position forgets its cost
