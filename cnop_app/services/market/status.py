"""The shared market status: one KeyValue record that every worker process reads.

It holds the market version (bumped by every refresh that stored prices), the last attempt and its
outcome, the back-off retry time, the circuit breaker state and the simulated market's step. This
module reads and writes it and turns it into the status shown by the API, the UI and /health.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session

from cnop_app.config import Settings, get_settings
from cnop_app.domain.timeutil import iso, parse_iso, utcnow
from cnop_app.hot_query import HotQuery
from cnop_app.models import KeyValue
from cnop_app.read_path import read_connection
from cnop_app.services import activity, coingecko, health

STATUS_KEY = "market:status"


def read_status(session: Session, *, lock: bool = False) -> dict[str, Any]:
    """The status record as a dict ({} when missing or unreadable), inside the caller's session.

    `lock`: read it FOR UPDATE, for a read-modify-write (a refresh, an admin's asset toggle): on
    PostgreSQL two writers would otherwise both bump the version from the same value."""
    row = session.get(KeyValue, STATUS_KEY, with_for_update=lock or None)
    return _parsed(row.value if row is not None else "")


def _parsed(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def write_status(session: Session, data: dict[str, Any]) -> None:
    """Replace the status record inside the caller's transaction."""
    row = session.get(KeyValue, STATUS_KEY)
    text = json.dumps(data, sort_keys=True)
    now = utcnow()
    if row is None:
        session.add(KeyValue(key=STATUS_KEY, value=text, updated_at=now))
    else:
        row.value = text
        row.updated_at = now
        session.add(row)


def version_of(status: dict[str, Any]) -> int:
    return int(status.get("version") or 0)


_key_values = KeyValue.__table__  # type: ignore[attr-defined]
_STATUS_TEXT = HotQuery(sa_select(_key_values.c.value).where(_key_values.c.key == STATUS_KEY))


def status_text() -> str:
    """The stored status record as it is ("" when missing): a cheap key for caches of market data,
    which change exactly when it does (every refresh and admin change bumps its version)."""
    with read_connection() as conn:
        row = _STATUS_TEXT.first(conn, {})
    return (row.value or "") if row is not None else ""


def load_status() -> dict[str, Any]:
    """The raw market status shared by all worker processes (a Core read: each live push's new table
    reads it twice, and an ORM session for one row cost more than the row)."""
    return _parsed(status_text())


def market_version() -> int:
    """Bumped by every refresh that stored prices: a cheap "did prices change?" poll."""
    return version_of(load_status())


def breaker_state(breaker: dict[str, Any]) -> str:
    """The breaker state as of now: an open breaker past its reset time is half-open."""
    state = breaker.get("state") or coingecko.CLOSED
    opened = parse_iso(breaker.get("opened_at"))
    reset = timedelta(seconds=get_settings().breaker_reset_seconds)
    if state == coingecko.OPEN and opened and utcnow() >= opened + reset:
        return coingecko.HALF_OPEN
    return state


def is_stale(settings: Settings, status: dict[str, Any], now: datetime) -> bool:
    """Are the stored prices stale? Only a live feed can be: snapshot and simulated are chosen on purpose."""
    if settings.market_source != "coingecko":
        return False
    last = parse_iso(status.get("last_success_at"))
    if last is None or int(status.get("consecutive_failures") or 0) > 0:
        return True
    if breaker_state(status.get("breaker") or {}) != coingecko.CLOSED:
        return True
    return now - last > timedelta(seconds=2 * settings.refresh_idle_seconds)


def market_status() -> dict[str, Any]:
    """Last good refresh, staleness, source, breaker state, activity mode: the same in every process."""
    settings = get_settings()
    status = load_status()
    now = utcnow()
    active = activity.is_active()
    as_of = parse_iso(status.get("last_success_at")) or parse_iso(status.get("snapshot_as_of"))
    breaker = status.get("breaker") or {}
    return {
        "source": settings.market_source,
        "as_of": iso(as_of),
        "age_seconds": int((now - as_of).total_seconds()) if as_of else None,
        "stale": is_stale(settings, status, now),
        "version": version_of(status),
        "last_attempt_at": status.get("last_attempt_at"),
        "last_outcome": status.get("last_outcome"),
        "last_error": status.get("last_error"),
        "consecutive_failures": int(status.get("consecutive_failures") or 0),
        "retry_at": status.get("retry_at") if status.get("last_outcome") != "ok" else None,
        "coins_stored": status.get("coins_stored"),
        "coins_skipped": status.get("coins_skipped"),
        "breaker": {
            "state": breaker_state(breaker),
            "failures": int(breaker.get("failures") or 0),
            "opened_at": breaker.get("opened_at"),
            "threshold": settings.breaker_failures,
            "reset_seconds": settings.breaker_reset_seconds,
        },
        "mode": "active" if active else "idle",
        "interval_seconds": settings.refresh_active_seconds if active else settings.refresh_idle_seconds,
    }


def _health() -> dict[str, Any]:
    status = market_status()
    return {
        "status": "degraded" if status["stale"] else "ok",
        "source": status["source"],
        "as_of": status["as_of"],
        "breaker": status["breaker"]["state"],
        "mode": status["mode"],
    }


health.register_check("market", _health)
