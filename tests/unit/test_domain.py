"""The domain core: pure rules, no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnop_app.domain import cash, network, ranges, throttle, trading
from cnop_app.domain.enums import CashMove, LedgerType, OrderStatus, OrderType, values
from cnop_app.domain.errors import BusinessRuleViolation, ValidationFailed
from cnop_app.domain.paging import MAX_OFFSET, MAX_PAGE, check_page
from cnop_app.domain.portfolio import percent, value_holding
from cnop_app.domain.timeutil import parse_iso

D = Decimal


def test_order_type_properties_and_stored_values() -> None:
    assert values(OrderType) == ("market_buy", "market_sell", "limit_buy", "limit_sell")
    assert OrderType.LIMIT_BUY.is_buy and OrderType.LIMIT_BUY.is_limit
    assert not OrderType.MARKET_SELL.is_buy and not OrderType.MARKET_SELL.is_limit
    assert OrderType.of("limit", "sell") is OrderType.LIMIT_SELL
    assert OrderType.MARKET_BUY == "market_buy" and f"{OrderType.MARKET_BUY}" == "market_buy"
    assert OrderType.MARKET_BUY.label == "Market buy" and OrderStatus.PENDING.label == "Pending"
    assert CashMove.WITHDRAW.ledger_type is LedgerType.WITHDRAW and CashMove.WITHDRAW.sign == -1


def test_available_and_insufficient_funds_names_the_shortfall() -> None:
    assert cash.available(D("100.00"), D("30.00")) == D("70.00")
    cash.require_funds(D("100"), D("30"), D("70"), "amount")
    with pytest.raises(BusinessRuleViolation) as err:
        cash.require_funds(D("100"), D("30"), D("70.01"), "amount")
    assert err.value.field == "amount"
    assert err.value.message == "Insufficient funds: available $70.00, short by $0.01"
    with pytest.raises(BusinessRuleViolation):
        cash.require_non_negative(D("-0.01"))


def test_buy_rounds_up_and_sell_rounds_down_to_the_cent() -> None:
    buy = trading.quote(True, D("0.333"), D("10.01"), D(0))
    sell = trading.quote(False, D("0.333"), D("10.01"), D(0))
    assert (buy.gross, sell.gross) == (D("3.34"), D("3.33"))  # exact value 3.33333
    assert buy.fee == sell.fee == D("0.00")


def test_fee_rounds_up_and_nets() -> None:
    buy = trading.quote(True, D("1"), D("100.00"), D("25"))  # 0.25 %
    assert (buy.gross, buy.fee, buy.net, buy.cash_delta) == (D("100.00"), D("0.25"), D("100.25"), D("-100.25"))
    sell = trading.quote(False, D("1"), D("100.01"), D("25"))
    assert sell.fee == D("0.26")  # 0.250025 rounded up
    assert sell.net == D("99.75") and sell.cash_delta == D("99.75")


def test_a_sale_never_costs_money_even_with_a_fee_above_100_percent() -> None:
    sell = trading.quote(False, D("1"), D("10"), D("20000"))
    assert sell.fee == sell.gross == D("10.00") and sell.net == D("0.00")
    buy = trading.quote(True, D("1"), D("10"), D("20000"))
    assert buy.fee == D("20.00")  # a buyer pays the full fee


@given(
    quantity=st.decimals(min_value=D("0.001"), max_value=D("1000"), places=8),
    price=st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8),
    bps=st.integers(min_value=0, max_value=30000),
)
def test_quote_properties(quantity: Decimal, price: Decimal, bps: int) -> None:
    exact = quantity * price
    buy = trading.quote(True, quantity, price, D(bps))
    sell = trading.quote(False, quantity, price, D(bps))
    assert buy.gross >= exact >= sell.gross >= 0
    assert buy.gross - sell.gross <= D("0.01")
    assert buy.gross.as_tuple().exponent == -2 and sell.fee.as_tuple().exponent == -2
    assert 0 <= sell.fee <= sell.gross and buy.fee >= 0


def test_quantity_for_usd_never_spends_more_than_typed() -> None:
    qty = trading.quantity_for_usd(D("100"), D("3"))
    assert qty == D("33.33333333")
    assert qty * D("3") <= D("100")


def test_average_cost_and_realized_pnl() -> None:
    avg = trading.average_cost_after_buy(D(0), D(0), D("2"), D("201.00"))
    assert avg == D("100.5")
    avg = trading.average_cost_after_buy(avg, D("2"), D("2"), D("99.00"))
    assert avg == D("75")
    assert trading.realized_on_sell(avg, D("1"), D("80.00"), D("0.50")) == D("4.50")


def test_limit_crossing() -> None:
    assert trading.crossed("limit_buy", D("100"), D("99.99"))
    assert not trading.crossed("limit_buy", D("100"), D("100.01"))
    assert trading.crossed("limit_sell", D("100"), D("100"))
    assert not trading.crossed("limit_sell", D("100"), None)
    assert not trading.crossed("limit_sell", D("100"), D("0"))


def test_quantity_and_order_value_rules_name_the_field() -> None:
    with pytest.raises(BusinessRuleViolation, match=r"Insufficient BTC: available 0\.5, short by 0\.25"):
        trading.require_quantity(D("1"), D("0.5"), D("0.75"), "BTC")
    with pytest.raises(BusinessRuleViolation, match=r"exceeds the maximum of \$10000\.00") as err:
        trading.require_order_value(D("10000.01"), D("10000"))
    assert err.value.field == "quantity"


def test_ranges_are_defined_once() -> None:
    assert ranges.RANGE_NAMES == ("24h", "7d", "30d")
    assert ranges.parse_range("7d") == timedelta(days=7)
    with pytest.raises(ValidationFailed) as err:
        ranges.parse_range("1y")
    assert err.value.field == "range" and "24h, 7d, 30d" in err.value.message


def test_iso_parsing_accepts_z_and_naive_as_utc() -> None:
    expected = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parse_iso("2026-01-02T03:04:05Z") == expected
    assert parse_iso("2026-01-02T03:04:05") == expected
    assert parse_iso("2026-01-02T05:04:05+02:00") == expected
    assert parse_iso(expected.replace(tzinfo=None)) == expected
    assert parse_iso("yesterday") is None and parse_iso("") is None and parse_iso(None) is None


def test_paging_bounds() -> None:
    check_page(1, 0)
    check_page(MAX_PAGE, MAX_OFFSET)
    for limit, offset, field in (
        (0, 0, "limit"),
        (MAX_PAGE + 1, 0, "limit"),
        (10, -1, "offset"),
        (10, 10**19, "offset"),
    ):
        with pytest.raises(ValidationFailed) as err:
            check_page(limit, offset)
        assert err.value.field == field


def test_valuation_falls_back_to_cost_and_percentages() -> None:
    priced = value_holding(D("0.5"), D("100"), D("120.005"))
    assert (priced.cost, priced.value, priced.unrealized_pnl) == (D("50.00"), D("60.00"), D("10.00"))
    unpriced = value_holding(D("2"), D("10.005"), None)
    assert unpriced.value == unpriced.cost == D("20.01")
    assert percent(D("1"), D("3")) == D("33.33") and percent(D("1"), D("0")) is None


def test_expiry_is_inclusive_and_gtc_never_expires() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert trading.is_expired(now, now) and not trading.is_expired(now + timedelta(seconds=1), now)
    assert not trading.is_expired(None, now)


def test_throttle_delays_double_after_the_threshold_and_reset_after_the_window() -> None:
    policy = throttle.Policy(threshold=3, window=timedelta(minutes=15))
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    counter = None
    for _ in range(2):
        counter = throttle.after_failure(counter, now, policy)
    assert counter is not None and counter.failures == 2 and throttle.seconds_blocked(counter, now) == 0
    waits = []
    for _ in range(8):
        counter = throttle.after_failure(counter, now, policy)
        waits.append(throttle.seconds_blocked(counter, now))
    assert waits == [15, 30, 60, 120, 240, 480, 900, 900]  # capped at the window
    later = now + timedelta(minutes=16)
    assert throttle.seconds_blocked(counter, later) == 0
    assert throttle.after_failure(counter, later + timedelta(minutes=16), policy).failures == 1
    assert throttle.user_ip_key("alice", "1.2.3.4") != throttle.user_ip_key("alice", "1.2.3.5")
    assert len(throttle.user_ip_key("x" * 10_000, None)) < 80


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies() -> None:
    trusted = network.parse_networks("10.0.0.0/8, 127.0.0.1")
    assert network.client_ip("127.0.0.1", "203.0.113.9, 10.1.2.3", trusted) == "203.0.113.9"
    assert network.client_ip("198.51.100.1", "203.0.113.9", trusted) == "198.51.100.1"  # untrusted peer
    assert network.client_ip("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"  # nobody trusted by default
    assert network.client_ip("127.0.0.1", "1.1.1.1, 203.0.113.9", trusted) == "203.0.113.9"  # right-most
    assert network.client_ip("127.0.0.1", "garbage", trusted) == "127.0.0.1"
    assert network.client_ip("127.0.0.1", "[2001:db8::1]:443", trusted) == "2001:db8::1"
    with pytest.raises(ValueError, match="'nope' is not an IP"):
        network.parse_networks("10.0.0.0/8, nope")
