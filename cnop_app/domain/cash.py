"""Cash rules: what is available to spend, and the insufficient-funds refusal."""

from __future__ import annotations

from decimal import Decimal

from cnop_app.domain.errors import BusinessRuleViolation
from cnop_app.domain.money import money_str

MAX_CASH_MOVE = Decimal("1000000")


def available(cash: Decimal, held: Decimal) -> Decimal:
    """Cash that can be spent or withdrawn: the balance minus what open buy orders hold."""
    return cash - held


def require_funds(cash: Decimal, held: Decimal, needed: Decimal, field: str) -> None:
    """Refuse (422 naming `field`, with the shortfall) when `needed` exceeds the available cash."""
    free = available(cash, held)
    if needed > free:
        raise BusinessRuleViolation(
            f"Insufficient funds: available ${money_str(free)}, short by ${money_str(needed - free)}", field
        )


def require_non_negative(new_cash: Decimal, field: str = "amount") -> None:
    """The last line of defence of every ledger posting: cash never goes below zero."""
    if new_cash < 0:
        raise BusinessRuleViolation(f"Insufficient funds: short by ${money_str(-new_cash)}", field)
