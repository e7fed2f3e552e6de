"""The mirror's health check (component `dynamodb_mirror` of /health) and its outbox gauges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import func
from sqlmodel import select

from cnop_app.db import read_session
from cnop_app.domain.timeutil import parse_iso
from cnop_app.models import Outbox
from cnop_app.services import health as app_health
from cnop_app.services.mirror.client import enabled
from cnop_app.services.mirror.drainer import reachability
from cnop_app.services.mirror.metrics import OUTBOX_DEPTH, OUTBOX_OLDEST_AGE

LAG_DEGRADED_MS = 60_000


class Backlog(NamedTuple):
    depth: int
    oldest_age_ms: int  # of the oldest undrained row
    failing: int  # undrained rows that failed at least once
    last_error: str | None  # newest error of an undrained row


def backlog() -> Backlog:
    """The undrained part of the outbox, read from the database."""
    with read_session() as session:
        depth, oldest = session.exec(
            select(func.count(), func.min(Outbox.created_at)).where(Outbox.processed_at.is_(None))  # type: ignore[union-attr]
        ).one()
        failing = session.exec(
            select(func.count()).where(Outbox.processed_at.is_(None), Outbox.attempts > 0)  # type: ignore[union-attr,operator]
        ).one()
        last_error = session.exec(
            select(Outbox.last_error)
            .where(Outbox.processed_at.is_(None), Outbox.last_error.is_not(None))  # type: ignore[union-attr]
            .order_by(Outbox.next_attempt_at.desc())  # type: ignore[union-attr]
            .limit(1)
        ).first()
    oldest_at = parse_iso(oldest)
    age_ms = (datetime.now(timezone.utc) - oldest_at) // timedelta(milliseconds=1) if oldest_at is not None else 0
    return Backlog(int(depth), max(0, age_ms), int(failing), last_error)


def health_check() -> dict[str, Any]:
    if not enabled():
        return {"status": "ok", "enabled": False}
    depth, age_ms, failing, last_error = backlog()
    unreachable, drainer_error = reachability()
    last_error = last_error or drainer_error
    lagging = age_ms > LAG_DEGRADED_MS
    status = "degraded" if lagging or failing or unreachable else "ok"
    return {
        "status": status,
        "enabled": True,
        "outbox_depth": depth,
        # A JSON number of seconds with millisecond precision (JSON has no decimal type).
        "oldest_undrained_age_seconds": age_ms / 1000,
        "failing_rows": failing,
        "dynamodb_reachable": not unreachable,
        "last_error": last_error,
    }


def _gauge(read: Callable[[Backlog], int | Decimal]) -> int | Decimal:
    """A backlog figure for Prometheus (which turns it into a float itself); NaN when unreadable."""
    if not enabled():
        return 0
    try:
        return read(backlog())
    except Exception:  # a scrape must not fail because the database is busy
        return Decimal("NaN")


OUTBOX_DEPTH.set_function(lambda: _gauge(lambda b: b.depth))
OUTBOX_OLDEST_AGE.set_function(lambda: _gauge(lambda b: Decimal(b.oldest_age_ms).scaleb(-3)))
app_health.register_check("dynamodb_mirror", health_check)
