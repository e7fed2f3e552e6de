"""Users: registration, profile, password change and the bootstrap admin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cnop_app.config import ConfigError, get_settings
from cnop_app.db import UnitOfWork, read_session, unit_of_work, write_session
from cnop_app.domain.enums import Role, values
from cnop_app.domain.errors import Conflict, NotFound, RateLimited, ValidationFailed
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import Account, AuthSession, User
from cnop_app.observability.logging import get_logger
from cnop_app.observability.metrics import AUTH_EVENTS
from cnop_app.services import audit, outbox, validation
from cnop_app.services.auth import throttle
from cnop_app.services.auth.passwords import hash_password, verify_password
from cnop_app.services.auth.sessions import Principal

ROLES = values(Role)
_log = get_logger("auth.users")


@dataclass(frozen=True)
class Profile:
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: date | None
    marketing_emails_consent: bool
    role: str
    created_at: datetime
    updated_at: datetime


def to_profile(user: User) -> Profile:
    return Profile(
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        phone=user.phone,
        date_of_birth=user.date_of_birth,
        marketing_emails_consent=user.marketing_emails_consent,
        role=user.role,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def register(
    data: dict[str, Any], *, role: str = Role.CUSTOMER, ip: str | None = None, uow: UnitOfWork | None = None
) -> Profile:
    """Create a user and an empty cash account. Raises ValidationFailed or Conflict (409).

    With `uow` the user is written into the caller's unit of work (e.g. register then log in, one
    commit); a duplicate then surfaces as Conflict when the caller commits or flushes."""
    username = validation.username(data.get("username"))
    email = validation.email(data.get("email"))
    password = validation.password(data.get("password"))
    first_name = validation.person_name(data.get("first_name"), "first_name")
    last_name = validation.person_name(data.get("last_name"), "last_name")
    phone = validation.phone(data.get("phone"))
    dob = validation.date_of_birth(data.get("date_of_birth"))
    consent = data.get("marketing_emails_consent", False)
    consent = validation.boolean(consent, "marketing_emails_consent") if consent is not None else False
    if role not in ROLES:
        raise ValidationFailed("role must be customer or admin", "role")
    password_hash = hash_password(password)
    try:
        with unit_of_work(uow) as work:
            session = work.session
            _ensure_unique(session, username, email)
            user = User(
                username=username,
                email=email,
                password_hash=password_hash,
                first_name=first_name,
                last_name=last_name,
                phone=phone,
                date_of_birth=dob,
                marketing_emails_consent=consent,
                role=role,
            )
            session.add(user)
            account = Account(username=username)
            session.add(account)
            audit.record(session, "user_registered", username, ip=ip, role=role)
            session.flush()
            outbox.emit(session, "user", username, user)
            outbox.emit(session, "balance", username, account)
            profile = to_profile(user)
            work.on_commit(lambda: AUTH_EVENTS.labels("registered").inc())
    except IntegrityError as exc:
        # A concurrent registration won the race after our uniqueness check.
        raise Conflict("Username or email already exists") from exc
    return profile


def _ensure_unique(session: Session, username: str, email: str, exclude_username: str | None = None) -> None:
    taken = session.exec(select(User).where(User.username == username)).first() if username else None
    if taken is not None and taken.username != exclude_username:
        raise Conflict(f"Username '{username}' already exists", "username")
    other = session.exec(select(User).where(User.email == email)).first()
    if other is not None and other.username != exclude_username:
        raise Conflict(f"Email '{email}' is already registered", "email")


def get_profile(username: str) -> Profile:
    with read_session() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound("User not found")
    return to_profile(user)


PROFILE_FIELDS = ("email", "first_name", "last_name", "phone", "date_of_birth", "marketing_emails_consent")


def update_profile(
    username: str, changes: dict[str, Any], *, ip: str | None = None, uow: UnitOfWork | None = None
) -> Profile:
    """Change any of PROFILE_FIELDS; the username and role cannot be changed here."""
    unknown = sorted(set(changes) - set(PROFILE_FIELDS))
    if unknown:
        raise ValidationFailed(f"{unknown[0]} cannot be changed here", unknown[0])
    values: dict[str, Any] = {}
    if "email" in changes:
        values["email"] = validation.email(changes["email"])
    for name in ("first_name", "last_name"):
        if name in changes:
            values[name] = validation.person_name(changes[name], name)
    if "phone" in changes:
        values["phone"] = validation.phone(changes["phone"])
    if "date_of_birth" in changes:
        values["date_of_birth"] = validation.date_of_birth(changes["date_of_birth"])
    if "marketing_emails_consent" in changes:
        values["marketing_emails_consent"] = validation.boolean(
            changes["marketing_emails_consent"], "marketing_emails_consent"
        )
    try:
        with write_session(uow) as session:
            user = session.exec(select(User).where(User.username == username)).first()
            if user is None:
                raise NotFound("User not found")
            if "email" in values:
                _ensure_unique(session, "", values["email"], exclude_username=username)
            for name, value in values.items():
                setattr(user, name, value)
            user.updated_at = datetime.now(timezone.utc)
            session.add(user)
            audit.record(session, "profile_updated", username, ip=ip, fields=sorted(values))
            session.flush()
            outbox.emit(session, "user", username, user)
            profile = to_profile(user)
    except IntegrityError as exc:
        raise Conflict("Email is already registered", "email") from exc
    return profile


PASSWORD_THROTTLED = "Too many wrong passwords; try again later"


def change_password(
    principal: Principal,
    current_password: object,
    new_password: object,
    *,
    ip: str | None = None,
    uow: UnitOfWork | None = None,
) -> int:
    """Change the password and revoke every other session. Returns how many were revoked.

    A wrong current password counts like a failed login for (username, client IP) and the IP
    (`throttle`): past the threshold the answer is RateLimited (429, Retry-After) before any hashing.
    Failures are committed in their own transaction, whatever the caller's unit of work does."""
    if not isinstance(current_password, str) or not current_password:
        raise ValidationFailed("current_password is required", "current_password")
    new = validation.password(new_password, "new_password")
    username = principal.username
    wait, scope = throttle.seconds_blocked(username, ip, utcnow())
    if wait:
        with write_session() as session:
            audit.record(session, "password_change_throttled", username, ip=ip, scope=scope, retry_after=wait)
        AUTH_EVENTS.labels("password_change_throttled").inc()
        raise RateLimited(PASSWORD_THROTTLED, retry_after=wait)
    with read_session() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound("User not found")
    if not verify_password(current_password, user.password_hash):
        _count_wrong_password(username, ip)
        raise ValidationFailed("current_password is not correct", "current_password")
    if verify_password(new, user.password_hash):
        raise ValidationFailed("new_password must differ from the current one", "new_password")
    new_hash = hash_password(new)
    now = datetime.now(timezone.utc)
    with unit_of_work(uow) as work:
        session = work.session
        user = session.exec(select(User).where(User.username == username)).one()
        user.password_hash = new_hash
        user.updated_at = now
        session.add(user)
        outbox.emit(session, "user", user.username, user)
        others = session.exec(
            select(AuthSession).where(
                AuthSession.username == username,
                AuthSession.jti != principal.jti,
                AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
            )
        ).all()
        for row in others:
            row.revoked_at = now
            session.add(row)
        throttle.clear_user(session, username, ip)
        audit.record(session, "password_changed", username, ip=ip, revoked_sessions=len(others))
        work.on_commit(lambda: AUTH_EVENTS.labels("password_changed").inc())
    return len(others)


def _count_wrong_password(username: str, ip: str | None) -> None:
    with write_session() as session:
        blocked = throttle.record_failure(session, username, ip, utcnow())
        audit.record(session, "password_change_failed", username, ip=ip, reason="current_password")
        for scope in blocked:
            audit.record(session, audit.THROTTLE_STARTED, username, ip=ip, scope=scope, via="password_change")
    AUTH_EVENTS.labels("password_change_failed").inc()


def bootstrap_admin() -> str | None:
    """Create the admin named by CNOP_ADMIN_USERNAME with CNOP_ADMIN_PASSWORD, once.

    An existing account of that name is never promoted: someone may have registered the name before
    the operator first started the app, and promoting it would hand them the admin role with their
    own password. The start then fails with a ConfigError naming the account. An existing admin is
    left as it is: its password may have been changed since (the configured one is only the first),
    and a disabled admin stays disabled (a warning is logged) until an admin enables it again."""
    settings = get_settings()
    if not settings.admin_username or not settings.admin_password:
        return None
    username = validation.username(settings.admin_username, "CNOP_ADMIN_USERNAME")
    validation.password(settings.admin_password, "CNOP_ADMIN_PASSWORD")
    with read_session() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is not None:
        if user.role != Role.ADMIN:
            with write_session() as session:
                audit.record(session, "bootstrap_admin_refused", username, actor="bootstrap", role=user.role)
            raise ConfigError(
                f"CNOP_ADMIN_USERNAME: '{username}' already exists as a {user.role} account (registered "
                f"{user.created_at:%Y-%m-%d %H:%M} UTC), so it was not made an admin: anyone could have "
                "registered that name. Set CNOP_ADMIN_USERNAME to a name that is not taken."
            )
        if not user.is_active:
            _log.warning(
                "the bootstrap admin is disabled and stays disabled; an admin can enable it again",
                extra={"username": username},
            )
        return username
    register(
        {
            "username": username,
            "email": f"{username}@admin.cnop.local",
            "password": settings.admin_password,
            "first_name": "Admin",
            "last_name": "User",
        },
        role=Role.ADMIN,
    )
    return username
