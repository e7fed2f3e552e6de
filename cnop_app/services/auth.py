"""Users, passwords, tokens and sessions."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import jwt
from passlib.context import CryptContext
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from cnop_app.config import get_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import AuthenticationFailed, Conflict, NotFound, RateLimited, ValidationFailed
from cnop_app.models import Account, AuthSession, User
from cnop_app.services import audit, outbox, validation

JWT_ALGORITHM = "HS256"
ROLES = ("customer", "admin")

# argon2id with OWASP's minimum profile (19 MiB, 2 passes, 1 lane): strong, and ~50 ms rather than
# passlib's default 64 MiB x 3 passes, which made each login cost half a second of CPU.
_pwd = CryptContext(
    schemes=["argon2"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
_dummy_hash_lock = threading.Lock()
_dummy_hash: str | None = None
# Failed logins for usernames that do not exist, so they lock out exactly like real ones.
_unknown_failures: dict[str, list[float]] = {}
_unknown_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    """The identity behind a verified token."""

    username: str
    role: str
    jti: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    username: str
    role: str
    jti: str


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
            "marketing_emails_consent": self.marketing_emails_consent,
            "role": self.role,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def hash_password(password: str) -> str:
    return _pwd.hash(password)


def _verify(password: str, password_hash: str) -> bool:
    try:
        return _pwd.verify(password, password_hash)
    except (ValueError, TypeError):
        return False


def _dummy() -> str:
    global _dummy_hash
    with _dummy_hash_lock:
        if _dummy_hash is None:
            _dummy_hash = _pwd.hash(uuid.uuid4().hex + "Aa1!")
        return _dummy_hash


def _profile(user: User) -> Profile:
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


# ---------------------------------------------------------------- registration


def register(data: dict[str, Any], *, role: str = "customer", ip: str | None = None) -> Profile:
    """Create a user and an empty cash account. Raises ValidationFailed or Conflict (409)."""
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
        with write_session() as session:
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
            profile = _profile(user)
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


# ---------------------------------------------------------------- login, tokens


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


def login(username: object, password: object, *, user_agent: str | None = None, ip: str | None = None) -> IssuedToken:
    """Check credentials and issue a token. Unknown user and wrong password look the same."""
    if not isinstance(username, str) or not username.strip():
        raise ValidationFailed("username is required", "username")
    if not isinstance(password, str) or password == "":
        raise ValidationFailed("password is required", "password")
    if len(password) > validation.PASSWORD_MAX:
        raise AuthenticationFailed("Invalid username or password")
    key = username.strip().lower()
    settings = get_settings()
    now = datetime.now(timezone.utc)
    with read_session() as session:
        user = session.exec(select(User).where(User.username == key)).first()
    if user is None:
        _verify(password, _dummy())  # same work as a real check: no timing oracle
        wait = _locked_unknown(key)
        if wait:
            raise RateLimited("Too many failed login attempts; try again later", retry_after=wait)
        _fail_unknown(key)
        with write_session() as session:
            audit.record(session, "login_failed", key, ip=ip, reason="credentials")
        raise AuthenticationFailed("Invalid username or password")
    ok = _verify(password, user.password_hash)
    with write_session() as session:
        fresh = session.exec(select(User).where(User.username == key)).one()
        if fresh.locked_until is not None and fresh.locked_until > now:
            audit.record(session, "login_locked", key, ip=ip)
            session.commit()
            raise RateLimited(
                "Too many failed login attempts; try again later",
                retry_after=int((fresh.locked_until - now).total_seconds()) + 1,
            )
        if not ok or not fresh.is_active:
            if not ok:
                fresh.failed_logins += 1
                if fresh.failed_logins >= settings.login_max_failures:
                    fresh.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
                    fresh.failed_logins = 0
                    audit.record(session, "account_locked", key, ip=ip)
                session.add(fresh)
            audit.record(session, "login_failed", key, ip=ip, reason="credentials" if not ok else "disabled")
            # Commit the counter, then refuse.
            session.commit()
            raise AuthenticationFailed("Invalid username or password")
        fresh.failed_logins = 0
        fresh.locked_until = None
        if _pwd.needs_update(fresh.password_hash):
            fresh.password_hash = hash_password(password)
        session.add(fresh)
        token = _issue(session, fresh, now, user_agent=user_agent, ip=ip)
        audit.record(session, "login_ok", key, ip=ip)
    return token


def _issue(session: Session, user: User, now: datetime, *, user_agent: str | None, ip: str | None) -> IssuedToken:
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


def authenticate(token: object) -> Principal:
    """Verify a bearer token: signature, pinned algorithm, expiry, session not revoked, user active."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise AuthenticationFailed("Not authenticated")
    try:
        claims = jwt.decode(
            token,
            get_settings().jwt_secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("Token has expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("Invalid token") from exc
    jti, username = claims.get("jti"), claims.get("sub")
    if not isinstance(jti, str) or not isinstance(username, str):
        raise AuthenticationFailed("Invalid token")
    now = datetime.now(timezone.utc)
    # One round trip on the hot path of every authenticated request: session and user together.
    with read_session() as session:
        found = session.exec(
            select(AuthSession, User)
            .join(User, User.username == AuthSession.username, isouter=True)  # type: ignore[arg-type]
            .where(AuthSession.jti == jti)
        ).first()
    row, user = found if found is not None else (None, None)
    if row is None or row.username != username or row.revoked_at is not None:
        raise AuthenticationFailed("Token has been revoked")
    if row.expires_at <= now:
        raise AuthenticationFailed("Token has expired")
    if user is None or not user.is_active:
        raise AuthenticationFailed("Account is disabled")
    # The role comes from the database, not the token: a demoted admin loses access at once.
    return Principal(username=user.username, role=user.role, jti=jti, expires_at=row.expires_at)


def logout(principal: Principal, *, ip: str | None = None) -> None:
    revoke_session(principal.username, principal.jti, ip=ip)


def revoke_session(username: str, jti: str, *, ip: str | None = None) -> None:
    with write_session() as session:
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


# ---------------------------------------------------------------- profile


def get_profile(username: str) -> Profile:
    with read_session() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound("User not found")
    return _profile(user)


PROFILE_FIELDS = ("email", "first_name", "last_name", "phone", "date_of_birth", "marketing_emails_consent")


def update_profile(username: str, changes: dict[str, Any], *, ip: str | None = None) -> Profile:
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
        with write_session() as session:
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
            profile = _profile(user)
    except IntegrityError as exc:
        raise Conflict("Email is already registered", "email") from exc
    return profile


def change_password(
    principal: Principal, current_password: object, new_password: object, *, ip: str | None = None
) -> int:
    """Change the password and revoke every other session. Returns how many were revoked."""
    if not isinstance(current_password, str) or not current_password:
        raise ValidationFailed("current_password is required", "current_password")
    new = validation.password(new_password, "new_password")
    with read_session() as session:
        user = session.exec(select(User).where(User.username == principal.username)).first()
    if user is None:
        raise NotFound("User not found")
    if not _verify(current_password, user.password_hash):
        raise ValidationFailed("current_password is not correct", "current_password")
    if _verify(new, user.password_hash):
        raise ValidationFailed("new_password must differ from the current one", "new_password")
    new_hash = hash_password(new)
    now = datetime.now(timezone.utc)
    with write_session() as session:
        user = session.exec(select(User).where(User.username == principal.username)).one()
        user.password_hash = new_hash
        user.updated_at = now
        session.add(user)
        outbox.emit(session, "user", user.username, user)
        others = session.exec(
            select(AuthSession).where(
                AuthSession.username == principal.username,
                AuthSession.jti != principal.jti,
                AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
            )
        ).all()
        for row in others:
            row.revoked_at = now
            session.add(row)
        audit.record(session, "password_changed", principal.username, ip=ip, revoked_sessions=len(others))
    return len(others)


# ---------------------------------------------------------------- admin bootstrap


def bootstrap_admin() -> str | None:
    """Create (or promote) the admin named by CNOP_ADMIN_USERNAME / CNOP_ADMIN_PASSWORD."""
    settings = get_settings()
    if not settings.admin_username or not settings.admin_password:
        return None
    username = validation.username(settings.admin_username, "CNOP_ADMIN_USERNAME")
    validation.password(settings.admin_password, "CNOP_ADMIN_PASSWORD")
    with write_session() as session:
        user = session.exec(select(User).where(User.username == username)).first()
        if user is not None:
            if user.role != "admin" or not user.is_active:
                user.role, user.is_active = "admin", True
                session.add(user)
                audit.record(session, "role_changed", username, actor="bootstrap", role="admin")
            return username
    register(
        {
            "username": username,
            "email": f"{username}@admin.cnop.local",
            "password": settings.admin_password,
            "first_name": "Admin",
            "last_name": "User",
        },
        role="admin",
    )
    return username
