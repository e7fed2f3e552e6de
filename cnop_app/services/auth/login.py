"""Logging in: the credential check, the failure counter and lockout, and the token it issues."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlmodel import Session, select

from cnop_app.config import get_settings
from cnop_app.db import UnitOfWork, read_session, write_session
from cnop_app.domain.errors import (
    AuthenticationFailed,
    DomainError,
    RateLimited,
    ValidationFailed,
)
from cnop_app.models import User
from cnop_app.observability.metrics import AUTH_EVENTS
from cnop_app.services import audit, validation
from cnop_app.services.auth.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from cnop_app.services.auth.sessions import IssuedToken, issue_token

# Failed logins for usernames that do not exist, so they lock out exactly like real ones.
_unknown_failures: dict[str, list[float]] = {}
_unknown_lock = threading.Lock()


def _locked_unknown(key: str) -> int:
    """Seconds left of the lockout of an unknown username, or 0."""
    settings = get_settings()
    now = time.monotonic()
    with _unknown_lock:
        recent = [t for t in _unknown_failures.get(key, []) if now - t < settings.login_lockout_seconds]
        _unknown_failures[key] = recent
        if len(recent) >= settings.login_max_failures:
            return int(settings.login_lockout_seconds - (now - recent[0])) + 1
    return 0


def _fail_unknown(key: str) -> None:
    now = time.monotonic()
    with _unknown_lock:
        if len(_unknown_failures) > 100_000:
            _unknown_failures.clear()
        _unknown_failures.setdefault(key, []).append(now)


def login(
    username: object,
    password: object,
    *,
    user_agent: str | None = None,
    ip: str | None = None,
    uow: UnitOfWork | None = None,
) -> IssuedToken:
    """Check credentials and issue a token. Unknown user and wrong password look the same.

    The failure counter, lockout and audit rows are written whatever the outcome; the refusal is
    raised only after that unit of work is committed. Counted in `cnop_auth_events_total`."""
    if not isinstance(username, str) or not username.strip():
        raise ValidationFailed("username is required", "username")
    if not isinstance(password, str) or password == "":
        raise ValidationFailed("password is required", "password")
    key = username.strip().lower()
    if len(password) > validation.PASSWORD_MAX:
        AUTH_EVENTS.labels("login_failed").inc()
        raise AuthenticationFailed("Invalid username or password")
    if uow is not None:
        # Part of the caller's transaction (just registered): the user is only visible there.
        return _login(uow, key, password, user_agent=user_agent, ip=ip)
    with read_session() as session:
        user = session.exec(select(User).where(User.username == key)).first()
    if user is None:
        verify_password(password, dummy_hash())  # same work as a real check: no timing oracle
        wait = _locked_unknown(key)
        if wait:
            AUTH_EVENTS.labels("login_locked").inc()
            raise RateLimited("Too many failed login attempts; try again later", retry_after=wait)
        _fail_unknown(key)
        with write_session() as session:
            audit.record(session, "login_failed", key, ip=ip, reason="credentials")
        AUTH_EVENTS.labels("login_failed").inc()
        raise AuthenticationFailed("Invalid username or password")
    ok = verify_password(password, user.password_hash)
    with UnitOfWork() as work:
        outcome = _decide(work.session, key, ok, password, user_agent=user_agent, ip=ip)
        work.commit()
    return outcome.result()


def _login(uow: UnitOfWork, key: str, password: str, *, user_agent: str | None, ip: str | None) -> IssuedToken:
    user = uow.session.exec(select(User).where(User.username == key)).first()
    if user is None:
        raise AuthenticationFailed("Invalid username or password")
    ok = verify_password(password, user.password_hash)
    outcome = _decide(uow.session, key, ok, password, user_agent=user_agent, ip=ip)
    uow.on_commit(outcome.count)
    if outcome.token is None:
        raise outcome.error or AuthenticationFailed("Invalid username or password")
    return outcome.token


@dataclass
class _Outcome:
    """What a credential check decided, applied after its writes are committed."""

    event: str
    token: IssuedToken | None = None
    error: DomainError | None = None

    def count(self) -> None:
        AUTH_EVENTS.labels(self.event).inc()

    def result(self) -> IssuedToken:
        self.count()
        if self.token is None:
            raise self.error or AuthenticationFailed("Invalid username or password")
        return self.token


def _decide(session: Session, key: str, ok: bool, password: str, *, user_agent: str | None, ip: str | None) -> _Outcome:
    """Apply one credential check to the user's row: lockout, failure counter, or a new session."""
    settings = get_settings()
    now = datetime.now(timezone.utc)
    fresh = session.exec(select(User).where(User.username == key)).one()
    if fresh.locked_until is not None and fresh.locked_until > now:
        audit.record(session, "login_locked", key, ip=ip)
        wait = int((fresh.locked_until - now).total_seconds()) + 1
        return _Outcome("login_locked", error=RateLimited("Too many failed login attempts; try again later", wait))
    if not ok or not fresh.is_active:
        if not ok:
            fresh.failed_logins += 1
            if fresh.failed_logins >= settings.login_max_failures:
                fresh.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
                fresh.failed_logins = 0
                audit.record(session, "account_locked", key, ip=ip)
            session.add(fresh)
        audit.record(session, "login_failed", key, ip=ip, reason="credentials" if not ok else "disabled")
        return _Outcome("login_failed", error=AuthenticationFailed("Invalid username or password"))
    fresh.failed_logins = 0
    fresh.locked_until = None
    if needs_rehash(fresh.password_hash):
        fresh.password_hash = hash_password(password)
    session.add(fresh)
    token = issue_token(session, fresh, now, user_agent=user_agent, ip=ip)
    audit.record(session, "login_ok", key, ip=ip)
    return _Outcome("login_ok", token=token)
