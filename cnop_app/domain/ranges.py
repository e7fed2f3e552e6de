"""Chart ranges: one list for the price history, the portfolio history and the range switchers."""

from __future__ import annotations

from datetime import timedelta

from cnop_app.domain.errors import ValidationFailed

RANGES: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RANGE_NAMES: tuple[str, ...] = tuple(RANGES)
DEFAULT_RANGE = "24h"


def is_range(value: object) -> bool:
    return isinstance(value, str) and value in RANGES


def parse_range(value: object, field: str = "range") -> timedelta:
    """The span of a range name, or ValidationFailed naming the field."""
    if not is_range(value):
        raise ValidationFailed(f"{field} must be one of " + ", ".join(RANGE_NAMES), field)
    return RANGES[value]  # type: ignore[index]
