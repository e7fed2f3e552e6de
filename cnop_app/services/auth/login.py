"""Logging in: the credential check, throttling of failures, and the token it issues.

Failures are throttled per (username, client IP) and per client IP (`services/auth/throttle.py`,
rules in `cnop_app.domain.throttle`), in the database so every worker and instance counts them.
Unknown usernames and wrong passwords look the same: same answer, same work, same `Retry-After`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from cnop_app.db import UnitOfWork, write_session
from cnop_app.domain.errors import AuthenticationFailed, DomainError, RateLimited, ValidationFailed
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import User
from cnop_app.observability.metrics import LOGINS
from cnop_app.services import audit, validation
from cnop_app.services.auth import throttle
from cnop_app.services.auth.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from cnop_app.services.auth.sessions import IssuedToken, issue_token

INVALID = "Invalid username or password"
THROTTLED = "Too many failed login attempts; try again later"


def login_input(username: object, password: object) -> tuple[str, str]:
    """(username lower-cased, password), or 422 naming the field for what cannot be either (no work done)."""
    if not isinstance(username, str) or not username.strip():
        raise ValidationFailed("username is required", "username")
    if not isinstance(password, str) or password == "":
        raise ValidationFailed("password is required", "password")
    if not validation.USERNAME_RE.match(username.strip()):
        raise ValidationFailed("username must be 6-30 characters of letters, digits and underscore", "username")
    if not validation.PASSWORD_MIN <= len(password) <= validation.PASSWORD_MAX:
        raise ValidationFailed(
            f"password must be {validation.PASSWORD_MIN}-{validation.PASSWORD_MAX} characters", "password"
        )
    return username.strip().lower(), password


def login(
    username: object,
    password: object,
    *,
    user_agent: str | None = None,
    ip: str | None = None,
    uow: UnitOfWork | None = None,
) -> IssuedToken:
    """Check credentials and issue a token. Counted in `cnop_logins_total` by outcome.

    The failure count and audit rows are committed whatever the outcome; the refusal is raised after.
    With `uow` (just registered, one transaction) the check runs inside the caller's unit of work."""
    try:
        key, password = login_input(username, password)
    except ValidationFailed:
        LOGINS.labels("malformed").inc()
        raise
    if uow is not None:
        outcome = _check(uow.session, key, password, user_agent=user_agent, ip=ip)
        uow.on_commit(outcome.count)
        return outcome.token_or_raise()
    wait, scope = throttle.seconds_blocked(key, ip, utcnow())
    if wait:
        with write_session() as session:
            audit.record(session, "login_throttled", key, ip=ip, scope=scope, retry_after=wait)
        LOGINS.labels("throttled").inc()
        raise RateLimited(THROTTLED, retry_after=wait)
    with UnitOfWork() as work:
        outcome = _check(work.session, key, password, user_agent=user_agent, ip=ip)
        work.commit()
    outcome.count()
    return outcome.token_or_raise()


@dataclass
class _Outcome:
    """What a credential check decided; counted and raised once its writes are committed."""

    outcome: str
    token: IssuedToken | None = None
    error: DomainError | None = None

    def count(self) -> None:
        LOGINS.labels(self.outcome).inc()

    def token_or_raise(self) -> IssuedToken:
        if self.token is None:
            raise self.error or AuthenticationFailed(INVALID)
        return self.token


def _check(session: Session, key: str, password: str, *, user_agent: str | None, ip: str | None) -> _Outcome:
    """One credential check: a failure is counted (maybe starting a delay), a success opens a session."""
    now = utcnow()
    user = session.exec(select(User).where(User.username == key)).first()
    # The same argon2 work whether or not the user exists: no timing oracle.
    ok = verify_password(password, user.password_hash if user is not None else dummy_hash())
    if user is None or not ok:
        blocked = throttle.record_failure(session, key, ip, now)
        audit.record(session, "login_failed", key, ip=ip, reason="credentials")
        for scope in blocked:
            audit.record(session, "login_throttle_started", key, ip=ip, scope=scope)
        return _Outcome("bad_credentials", error=AuthenticationFailed(INVALID))
    if not user.is_active:
        audit.record(session, "login_failed", key, ip=ip, reason="disabled")
        return _Outcome("disabled", error=AuthenticationFailed(INVALID))
    throttle.clear_user(session, key, ip)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    token = issue_token(session, user, now, user_agent=user_agent, ip=ip)
    audit.record(session, "login_ok", key, ip=ip)
    return _Outcome("success", token=token)
