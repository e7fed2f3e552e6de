"""Auth metrics that are not audit rows: token rejections by reason, and the active sessions gauge.

Logins by outcome are `cnop_logins_total` (observability.metrics); registrations, logouts and password
changes `cnop_auth_events_total`; throttle starts and suspicious events are counted from their audit
rows (`services.audit`). Labels are fixed sets: never usernames or IPs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter, Gauge
from sqlalchemy import func
from sqlmodel import col, select

from cnop_app.db import read_session
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import AuthSession
from cnop_app.observability.logging import get_logger
from cnop_app.observability.metrics import AUTH_EVENTS, REGISTRY

REJECTION_REASONS = ("expired", "revoked", "invalid", "disabled")
AUTH_EVENT_KINDS = ("registered", "logout", "password_changed", "password_change_failed", "password_change_throttled")
ACTIVE_SESSIONS_EVERY_SECONDS = 60

TOKEN_REJECTIONS = Counter(
    "cnop_token_rejections_total",
    "Bearer tokens and session cookies refused, by reason: expired, revoked, invalid, disabled (UI and API)",
    ["reason"],
    registry=REGISTRY,
)
ACTIVE_SESSIONS = Gauge(
    "cnop_active_sessions",
    "Sessions neither revoked nor expired, across the deployment (counted every minute)",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
for _reason in REJECTION_REASONS:
    TOKEN_REJECTIONS.labels(_reason)
for _kind in AUTH_EVENT_KINDS:
    AUTH_EVENTS.labels(_kind)

_log = get_logger("auth.metrics")


def count_active_sessions() -> int:
    """Count the live sessions (one indexed COUNT) and publish the number in `cnop_active_sessions`."""
    with read_session() as session:
        count = session.exec(
            select(func.count())
            .select_from(AuthSession)
            .where(col(AuthSession.revoked_at).is_(None), col(AuthSession.expires_at) > utcnow())
        ).one()
    ACTIVE_SESSIONS.set(count)
    return int(count)


@asynccontextmanager
async def active_sessions_lifespan() -> AsyncIterator[None]:
    """Keep `cnop_active_sessions` current in this process while the app runs."""

    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(count_active_sessions)
            except Exception:  # a database hiccup must not end the loop
                _log.warning("could not count active sessions", exc_info=True)
            await asyncio.sleep(ACTIVE_SESSIONS_EVERY_SECONDS)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
