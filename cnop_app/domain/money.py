"""Exact money and quantity helpers. Decimal only; floats are refused."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from cnop_app.domain.errors import ValidationFailed

CENT = Decimal("0.01")
QUANTITY_STEP = Decimal("0.00000001")


def parse_decimal(value: object, field: str, max_places: int | None = None) -> Decimal:
    """Turn user input (string or int, never float) into a finite Decimal, or name the field."""
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"{field} must be a number", field)
    if isinstance(value, float):
        # JSON numbers arrive as floats; their decimal text is what the user typed.
        value = repr(value)
    if isinstance(value, (int, Decimal)):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            raise ValidationFailed(f"{field} is required", field)
        try:
            result = Decimal(text)
        except InvalidOperation as exc:
            raise ValidationFailed(f"{field} must be a number", field) from exc
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
