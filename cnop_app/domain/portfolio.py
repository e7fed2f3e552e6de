"""Valuation rules: what a holding is worth, and percentages of a whole.

A holding whose asset has no price is valued at its cost (no invented loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from cnop_app.domain.money import to_cents
from cnop_app.domain.trading import EXACT

PERCENT = Decimal("0.01")


@dataclass(frozen=True)
class Valuation:
    """A holding's cost basis and market value, each rounded to the cent, and the price used."""

    cost: Decimal
    value: Decimal
    price: Decimal | None

    @property
    def unrealized_pnl(self) -> Decimal:
        return self.value - self.cost


def value_holding(quantity: Decimal, average_cost: Decimal, price: Decimal | None) -> Valuation:
    cost = EXACT.multiply(average_cost, quantity)
    value = cost if price is None else EXACT.multiply(price, quantity)
    return Valuation(cost=to_cents(cost), value=to_cents(value), price=price)


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """`part` as a percentage of `whole`, two decimals half-even; None when the whole is zero."""
    if whole == 0:
        return None
    return EXACT.divide(EXACT.multiply(part, Decimal(100)), whole).quantize(PERCENT, rounding=ROUND_HALF_EVEN)
