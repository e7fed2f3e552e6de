"""Login throttling counters in the database: every worker and instance sees the same counts.

The rules are `cnop_app.domain.throttle`; this module reads and writes the counters. Writes take the
row lock (SELECT ... FOR UPDATE) so concurrent failures from many processes all count.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from cnop_app.config import get_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain import throttle as rules
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import LoginThrottle


def _policies() -> dict[str, rules.Policy]:
    settings = get_settings()
    window = timedelta(seconds=settings.login_lockout_seconds)
    return {
        "user_ip": rules.Policy(threshold=settings.login_max_failures, window=window),
        "ip": rules.Policy(threshold=settings.login_ip_max_failures, window=window),
    }


def _keys(username: str, ip: str | None) -> dict[str, str]:
    return {"user_ip": rules.user_ip_key(username, ip), "ip": rules.ip_key(ip)}


def _counter(row: LoginThrottle | None) -> rules.Counter | None:
    if row is None:
        return None
    return rules.Counter(row.failures, row.window_started_at, row.blocked_until)


def seconds_blocked(username: str, ip: str | None, now: datetime) -> tuple[int, str | None]:
    """How long this (username, IP) must wait, and which limit blocks it ("user_ip" or "ip")."""
    keys = _keys(username, ip)
    with read_session() as session:
        rows = {r.key: r for r in session.exec(select(LoginThrottle).where(col(LoginThrottle.key).in_(keys.values())))}
    waits = [(rules.seconds_blocked(_counter(rows.get(key)), now), scope) for scope, key in keys.items()]
    wait, scope = max(waits)
    return (wait, scope) if wait else (0, None)


def _locked_row(session: Session, key: str, now: datetime, username_hash: str | None = None) -> LoginThrottle:
    row = session.exec(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).first()
    if row is not None:
        return row
    row = LoginThrottle(key=key, failures=0, window_started_at=now, username_hash=username_hash)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another process inserted it first: lock theirs
        row = session.exec(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).one()
    return row


def record_failure(session: Session, username: str, ip: str | None, now: datetime) -> list[str]:
    """Count one failed login in the caller's transaction. Returns the scopes that became blocked."""
    newly_blocked = []
    policies = _policies()
    for scope, key in _keys(username, ip).items():
        row = _locked_row(session, key, now, rules.username_hash(username) if scope == "user_ip" else None)
        after = rules.after_failure(_counter(row), now, policies[scope])
        if after.blocked_until is not None:
            newly_blocked.append(scope)
        row.failures, row.window_started_at, row.blocked_until = (
            after.failures,
            after.window_started_at,
            after.blocked_until,
        )
        session.add(row)
    return newly_blocked


def clear_user(session: Session, username: str, ip: str | None) -> None:
    """A successful login starts this (username, IP) over; the IP's own count keeps its window."""
    session.execute(delete(LoginThrottle).where(col(LoginThrottle.key) == rules.user_ip_key(username, ip)))


def clear_username(session: Session, username: str) -> int:
    """Delete every (username, IP) counter of `username` (an admin's "clear login throttling"), in the
    caller's transaction. Per-IP counters are shared by every name tried from that IP: they stay."""
    result = session.execute(
        delete(LoginThrottle).where(col(LoginThrottle.username_hash) == rules.username_hash(username))
    )
    return int(result.rowcount or 0)


def prune(now: datetime | None = None) -> int:
    """Drop counters whose window and block have both passed (kept small; called after refreshes)."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=get_settings().login_lockout_seconds)
    with write_session() as session:
        result = session.execute(
            delete(LoginThrottle).where(
                col(LoginThrottle.window_started_at) < cutoff,
                (col(LoginThrottle.blocked_until).is_(None)) | (col(LoginThrottle.blocked_until) < now),
            )
        )
        return int(result.rowcount or 0)
