"""Order rules and fill arithmetic, shared by the order service and the trade ticket's preview.

Money rules (all Decimal, money in whole cents):
- buy: gross = quantity x price rounded UP to the cent (the buyer never pays less than the exact value);
- sell: gross = quantity x price rounded DOWN to the cent (the seller never receives more);
- fee = gross x fee_bps / 10000 rounded UP to the cent; a sell's fee is capped at its gross so a sale
  never costs money;
- net (the cash that moves): a buy pays gross + fee, a sell receives gross - fee;
- holdings keep a weighted average cost that includes buy fees (18 decimals); a sell realizes
  (gross - fee) - average_cost x quantity, rounded half-even to the cent;
- quantities: at least 0.001, at most 8 decimals; limit prices 0 < p <= 1,000,000, at most 8 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal

from cnop_app.domain.enums import OrderType
from cnop_app.domain.errors import BusinessRuleViolation
from cnop_app.domain.money import CENT, QUANTITY_STEP, decimal_str, money_str

MIN_QUANTITY = Decimal("0.001")
MAX_QUANTITY = Decimal("1000000000000")
QUANTITY_PLACES = 8
PRICE_PLACES = 8
PRICE_STEP = Decimal("0.00000001")
MAX_LIMIT_PRICE = Decimal("1000000")
AVG_COST_STEP = Decimal("1e-18")  # NUMERIC(38, 18) on PostgreSQL: store nothing finer
BPS = Decimal(10000)

# Time in force of a limit order, as the trade ticket offers it: (label, lifetime; None = until cancelled).
EXPIRY_CHOICES: dict[str, tuple[str, timedelta | None]] = {
    "gtc": ("Cancelled", None),
    "1h": ("1 hour", timedelta(hours=1)),
    "1d": ("1 day", timedelta(days=1)),
    "7d": ("7 days", timedelta(days=7)),
}

# Products and quotients get enough digits that the only rounding is the explicit one.
EXACT = Context(prec=80)


@dataclass(frozen=True)
class FillQuote:
    """What a fill of `quantity` at `price` costs or pays: gross, fee and the net cash that moves."""

    is_buy: bool
    quantity: Decimal
    price: Decimal
    gross: Decimal
    fee: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross + self.fee if self.is_buy else self.gross - self.fee

    @property
    def cash_delta(self) -> Decimal:
        """Signed change of the cash balance: negative for a buy."""
        return -self.net if self.is_buy else self.net


def order_value(quantity: Decimal, price: Decimal) -> Decimal:
    """The exact (unrounded) value of an order, for the maximum-order-value check."""
    return EXACT.multiply(quantity, price)


def buy_gross(quantity: Decimal, price: Decimal) -> Decimal:
    """What a buyer pays before fee: the exact value rounded up to the cent."""
    return EXACT.multiply(quantity, price).quantize(CENT, rounding=ROUND_CEILING)


def sell_gross(quantity: Decimal, price: Decimal) -> Decimal:
    """What a seller receives before fee: the exact value rounded down to the cent."""
    return EXACT.multiply(quantity, price).quantize(CENT, rounding=ROUND_FLOOR)


def fee_for(gross: Decimal, fee_bps: Decimal) -> Decimal:
    """The trading fee on `gross`, rounded up to the cent (zero when there is no fee)."""
    if fee_bps <= 0:
        return Decimal("0.00")
    return EXACT.divide(EXACT.multiply(gross, fee_bps), BPS).quantize(CENT, rounding=ROUND_CEILING)


def cap_sell_fee(fee: Decimal, gross: Decimal) -> Decimal:
    """A sale never costs money: its fee is at most its gross."""
    return min(fee, gross)


def quote(is_buy: bool, quantity: Decimal, price: Decimal, fee_bps: Decimal) -> FillQuote:
    """Gross, fee and net of a fill: THE fill arithmetic (service and preview both call this)."""
    if is_buy:
        gross = buy_gross(quantity, price)
        fee = fee_for(gross, fee_bps)
    else:
        gross = sell_gross(quantity, price)
        fee = cap_sell_fee(fee_for(gross, fee_bps), gross)
    return FillQuote(is_buy=is_buy, quantity=quantity, price=price, gross=gross, fee=fee)


def net_amount(order_type: str, gross: Decimal, fee: Decimal) -> Decimal:
    """The cash an order moves (or will move): buy gross + fee, sell gross - fee."""
    return gross + fee if OrderType(order_type).is_buy else gross - fee


def quantity_for_usd(usd: Decimal, price: Decimal) -> Decimal:
    """The quantity `usd` buys at `price`, rounded down to the quantity step (spend at most `usd`)."""
    return EXACT.divide(usd, price).quantize(QUANTITY_STEP, rounding=ROUND_DOWN)


def average_cost_after_buy(
    average_cost: Decimal, quantity: Decimal, bought: Decimal, paid_with_fee: Decimal
) -> Decimal:
    """The weighted average cost per unit after buying `bought` units for `paid_with_fee`."""
    cost = EXACT.add(EXACT.multiply(average_cost, quantity), paid_with_fee)
    return EXACT.divide(cost, quantity + bought).quantize(AVG_COST_STEP, rounding=ROUND_HALF_EVEN)


def realized_on_sell(average_cost: Decimal, sold: Decimal, gross: Decimal, fee: Decimal) -> Decimal:
    """Profit or loss a sale realizes: (gross - fee) - average cost of what was sold, to the cent."""
    cost_removed = EXACT.multiply(average_cost, sold).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return gross - fee - cost_removed


def crossed(order_type: str, limit_price: Decimal | None, price: Decimal | None) -> bool:
    """Whether a market price fills a limit order: a buy at or below its limit, a sell at or above."""
    if price is None or price <= 0 or limit_price is None:
        return False
    if OrderType(order_type) is OrderType.LIMIT_BUY:
        return price <= limit_price
    return price >= limit_price


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    """A resting order with an expiry ends at that instant (good-till-cancelled has none)."""
    return expires_at is not None and expires_at <= now


def require_quantity(owned: Decimal, held: Decimal, needed: Decimal, asset_id: str) -> None:
    """Refuse selling more than the free quantity (owned minus what open sells hold)."""
    free = owned - held
    if needed > free:
        raise BusinessRuleViolation(
            f"Insufficient {asset_id}: available {decimal_str(free)}, short by {decimal_str(needed - free)}",
            "quantity",
        )


def require_order_value(value: Decimal, limit: Decimal) -> None:
    if value > limit:
        raise BusinessRuleViolation(
            f"Order value ${money_str(value)} exceeds the maximum of ${money_str(limit)}", "quantity"
        )
