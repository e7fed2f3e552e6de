"""ISO 8601 times: one parser and one formatter for services, scheduler, mirror and UI."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

# Clock readings and durations in services/ are integer nanoseconds (`time.time_ns()`,
# `time.monotonic_ns()`): exact, and no binary floats.
NS_PER_SECOND = 1_000_000_000


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def parse_iso(value: Any) -> datetime | None:
    """An ISO 8601 string ("Z" allowed) or datetime as an aware UTC datetime; None when it is not one.

    A naive value is taken as UTC (that is how the database and CoinGecko write them)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
