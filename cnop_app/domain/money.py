"""Exact money and quantity helpers. Decimal only; floats are refused."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

from cnop_app.domain.errors import ValidationFailed

CENT = Decimal("0.01")
QUANTITY_STEP = Decimal("0.00000001")
# Typed amounts: ASCII digits, at most one dot, an optional leading minus (refused later by the rules
# that need a positive value, with their own message) and thousands commas in groups of three
# ("1,000.50", as the UI shows amounts). Decimal() alone would also take "1_0", "１０", "1e3", "+5" and
# "1,5" once commas were stripped, i.e. 15 where a European user meant 1.5.
_DECIMAL_TEXT = re.compile(r"-?(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)")


def parse_decimal(value: object, field: str, max_places: int | None = None) -> Decimal:
    """Turn user input into a finite Decimal, or name the field.

    Text must be a plain decimal (see `_DECIMAL_TEXT`); ints and JSON numbers (floats, read by their
    shortest decimal text) are taken as they are.
    """
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"{field} must be a number", field)
    if isinstance(value, float):
        # JSON numbers arrive as floats; their shortest decimal text ("1e-05" included) is what was sent.
        result = Decimal(repr(value))
    elif isinstance(value, (int, Decimal)):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValidationFailed(f"{field} is required", field)
        if not _DECIMAL_TEXT.fullmatch(text):
            raise ValidationFailed(f"{field} must be a number", field)
        result = Decimal(text.replace(",", ""))
    else:
        raise ValidationFailed(f"{field} must be a number", field)
    if not result.is_finite():
        raise ValidationFailed(f"{field} must be a finite number", field)
    if max_places is not None and -result.as_tuple().exponent > max_places:  # type: ignore[operator]
        raise ValidationFailed(f"{field} must have at most {max_places} decimal places", field)
    return result


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def money_str(value: Decimal | None) -> str | None:
    """Money as a JSON string with exactly two decimals ("1234.50")."""
    if value is None:
        return None
    return format(value.quantize(CENT, rounding=ROUND_HALF_EVEN), "f")


def decimal_str(value: Decimal | None) -> str | None:
    """Exact value as a plain string without exponent or trailing zeros ("0.5", "12")."""
    if value is None:
        return None
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
