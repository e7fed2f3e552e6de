"""Tokens and sessions: issue a JWT per login, verify it on every request, revoke it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

import jwt
from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from cnop_app.config import get_settings
from cnop_app.db import UnitOfWork, read_session, write_session
from cnop_app.domain.enums import Role
from cnop_app.domain.errors import (
    AuthenticationFailed,
    NotFound,
)
from cnop_app.domain.timeutil import NS_PER_SECOND
from cnop_app.hot_query import HotQuery
from cnop_app.models import AuthSession, User
from cnop_app.observability.logging import get_logger
from cnop_app.observability.metrics import AUTH_EVENTS
from cnop_app.read_path import read_connection, write_or_defer
from cnop_app.services import audit
from cnop_app.services.auth.metrics import TOKEN_REJECTIONS

JWT_ALGORITHM = "HS256"
_log = get_logger("auth.sessions")


@dataclass(frozen=True)
class Principal:
    """The identity behind a verified token."""

    username: str
    role: str
    jti: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    username: str
    role: str
    jti: str


def issue_token(session: Session, user: User, now: datetime, *, user_agent: str | None, ip: str | None) -> IssuedToken:
    settings = get_settings()
    expires_in = settings.jwt_expire_minutes * 60
    expires_at = now + timedelta(seconds=expires_in)
    jti = uuid.uuid4().hex
    payload = {
        "sub": user.username,
        "role": user.role,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti,
    }
    token = jwt.encode(payload, settings.jwt_secret, algorithm=JWT_ALGORITHM)
    session.add(
        AuthSession(
            jti=jti,
            username=user.username,
            issued_at=now,
            expires_at=expires_at,
            user_agent=(user_agent or "")[:255] or None,
            ip=ip,
        )
    )
    return IssuedToken(access_token=token, expires_in=expires_in, username=user.username, role=user.role, jti=jti)


@lru_cache(maxsize=4096)
def _verified_claims(token: str, secret: str) -> tuple[object, object, Decimal]:
    """(jti, sub) of a token whose signature and claims verified. Memoised per (token, secret): the
    same bytes verify the same way, and a bot sends one token thousands of times. Only successes are
    kept, so `exp` is checked again by the caller; revocation and the user's state are read from the
    database on every request."""
    claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["sub", "exp", "iat", "jti"]})
    return claims.get("jti"), claims.get("sub"), Decimal(str(claims["exp"]))  # PyJWT checked it is a number


def verify_token(token: object) -> tuple[str, str]:
    """(jti, username) of a token whose signature, algorithm, claims and expiry check out. No I/O
    (safe on an event loop); `authenticate` adds the session and user checks."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise _rejected("invalid", "Not authenticated")
    try:
        jti, username, exp = _verified_claims(token, get_settings().jwt_secret)
        if exp * NS_PER_SECOND <= time.time_ns():  # PyJWT's rule, for a token verified earlier
            raise jwt.ExpiredSignatureError("Signature has expired")
    except jwt.ExpiredSignatureError as exc:
        raise _rejected("expired", "Token has expired") from exc
    except jwt.PyJWTError as exc:
        raise _rejected("invalid", "Invalid token") from exc
    if not isinstance(jti, str) or not isinstance(username, str):
        raise _rejected("invalid", "Invalid token")
    return jti, username


SessionRows = Mapping[str, Any]
"""Session-and-user rows (named tuples, `HotQuery`) read together for several sessions (`read_sessions`), by
jti; None for a jti without a session."""


def read_sessions(jtis: Iterable[str]) -> SessionRows:
    """The session and user rows of these sessions in ONE statement: a group commit checks its
    whole batch of orders this way instead of one round trip each. A jti with no session maps to None."""
    wanted = sorted(set(jtis))
    if not wanted:
        return {}
    found: dict[str, Any] = dict.fromkeys(wanted)
    with read_connection() as conn:
        for start in range(0, len(wanted), SESSIONS_PER_READ):
            chunk = wanted[start : start + SESSIONS_PER_READ]
            rows = _sessions_and_users(len(chunk)).rows(conn, {f"jti_{i}": jti for i, jti in enumerate(chunk)})
            found.update((row.jti, row) for row in rows)
    return found


def authenticate(token: object, known: SessionRows | None = None) -> Principal:
    """Verify a bearer token: signature, pinned algorithm, expiry, session not revoked, user active.

    `known`: the session rows just read for a batch (`read_sessions`); else the session is read here.
    Every refusal is counted in `cnop_token_rejections_total{reason}`; a revoked session's token
    presented again is also an audit row (`revoked_token_presented`, a suspicious event)."""
    jti, username = verify_token(token)
    now = datetime.now(timezone.utc)
    if known is not None and jti in known:
        found = known[jti]
    else:
        # One Core round trip on the hot path of every authenticated request: session and user together.
        # Never cached: a session revoked or a user disabled through any instance is refused at once.
        with read_connection() as conn:
            found = _SESSION_AND_USER.first(conn, {"jti": jti})
    if found is None or found.username != username:
        # Signed with our secret but no such session: a wiped database, or a leaked secret.
        raise _rejected("invalid", "Token has been revoked")
    if found.revoked_at is not None:
        revoked_at = found.revoked_at
        write_or_defer(lambda: _record_revoked_reuse(username, jti, revoked_at))
        raise _rejected("revoked", "Token has been revoked")
    if found.expires_at <= now:
        raise _rejected("expired", "Token has expired")
    if found.role is None or not found.is_active:
        raise _rejected("disabled", "Account is disabled")
    # The role comes from the database, not the token: a demoted admin loses access at once.
    return Principal(username=username, role=found.role, jti=jti, expires_at=found.expires_at)


_sessions = AuthSession.__table__  # type: ignore[attr-defined]
_users = User.__table__  # type: ignore[attr-defined]
# The session with its user (one join): by one jti on every authenticated request, by a batch's jtis
# for a group commit.
_SESSION_ROWS = sa_select(
    _sessions.c.jti,
    _sessions.c.username,
    _sessions.c.expires_at,
    _sessions.c.revoked_at,
    _users.c.role,
    _users.c.is_active,
).select_from(_sessions.outerjoin(_users, _users.c.username == _sessions.c.username))
_SESSION_AND_USER = HotQuery(_SESSION_ROWS.where(_sessions.c.jti == bindparam("jti")))
# A batch's sessions: one fixed statement per count of jtis (IN with that many parameters) run as a
# `HotQuery`, not an expanding IN list, which SQLAlchemy renders again on every execution (measured
# on SQLite: one session 133-204 -> 59-76 µs, four 180-211 -> 70-82 µs). A group commit takes at most
# 64 requests.
SESSIONS_PER_READ = 64


@lru_cache(maxsize=SESSIONS_PER_READ)
def _sessions_and_users(count: int) -> HotQuery:
    return HotQuery(_SESSION_ROWS.where(_sessions.c.jti.in_([bindparam(f"jti_{i}") for i in range(count)])))


def _rejected(reason: str, message: str) -> AuthenticationFailed:
    TOKEN_REJECTIONS.labels(reason).inc()
    return AuthenticationFailed(message)


def _record_revoked_reuse(username: str, jti: str, revoked_at: datetime) -> None:
    """Audit a revoked session's token presented again (stolen, or a tab left open at logout)."""
    try:
        with write_session() as session:
            audit.record(session, audit.REVOKED_TOKEN_PRESENTED, username, jti=jti, revoked_at=revoked_at)
    except Exception:  # the refusal stands (401) even if the audit write fails
        _log.warning("could not audit a revoked token", exc_info=True)


def logout(principal: Principal, *, ip: str | None = None, uow: UnitOfWork | None = None) -> None:
    revoke_session(principal.username, principal.jti, ip=ip, uow=uow)
    AUTH_EVENTS.labels("logout").inc()


def revoke_session(username: str, jti: str, *, ip: str | None = None, uow: UnitOfWork | None = None) -> None:
    with write_session(uow) as session:
        row = session.get(AuthSession, jti)
        if row is None or row.username != username:
            raise NotFound("Session not found")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(timezone.utc)
            session.add(row)
            audit.record(session, "logout", username, ip=ip, jti=jti)


@dataclass(frozen=True)
class SessionView:
    jti: str
    issued_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None


def active_sessions(username: str) -> list[SessionView]:
    now = datetime.now(timezone.utc)
    with read_session() as session:
        rows = session.exec(
            select(AuthSession)
            .where(AuthSession.username == username, AuthSession.revoked_at.is_(None))  # type: ignore[union-attr]
            .order_by(AuthSession.issued_at.desc())  # type: ignore[attr-defined]
        ).all()
    return [SessionView(r.jti, r.issued_at, r.expires_at, r.user_agent, r.ip) for r in rows if r.expires_at > now]
