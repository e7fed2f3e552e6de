"""Rebuilding a holding from its fills, with the same arithmetic the fills were booked with.

The integrity check (`services/admin/integrity.py`) compares the stored holdings with this replay,
and the reconstructed portfolio history (`services/portfolio.py`) values past positions with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cnop_app.domain import trading as rules
from cnop_app.domain.enums import FillSide

ZERO = Decimal(0)


@dataclass(frozen=True)
class HoldingState:
    quantity: Decimal = ZERO
    average_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO


def apply_fill(state: HoldingState, side: str, quantity: Decimal, gross: Decimal, fee: Decimal) -> HoldingState:
    """The holding after one fill: a buy moves the average cost (fee included), a sale realizes P&L;
    a position sold down to zero forgets its average cost."""
    if FillSide(side) is FillSide.BUY:
        average = rules.average_cost_after_buy(state.average_cost, state.quantity, quantity, gross + fee)
        return HoldingState(state.quantity + quantity, average, state.realized_pnl)
    realized = state.realized_pnl + rules.realized_on_sell(state.average_cost, quantity, gross, fee)
    remaining = state.quantity - quantity
    return HoldingState(remaining, state.average_cost if remaining != 0 else ZERO, realized)
