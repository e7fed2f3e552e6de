"""Registration rules, login, tokens, revocation and profile, through the auth service."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from sqlmodel import select

from cnop_app.config import get_settings, reset_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import AuthenticationFailed, Conflict, ValidationFailed
from cnop_app.models import AuditEvent, AuthSession, User
from cnop_app.services import auth
from tests.support.helpers import STRONG_PASSWORD, user_payload


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("username", "short", "6-30"),
        ("username", "has space1", "6-30"),
        ("username", "x" * 31, "6-30"),
        ("email", "not-an-email", "valid email"),
        ("password", "alllowercase1!", "upper-case"),
        ("password", "ALLUPPERCASE1!", "lower-case"),
        ("password", "NoDigitsHere!!", "digit"),
        ("password", "NoSpecials1234", "one of"),
        ("password", "Sh0rt!", "at least 12"),
        ("first_name", "R2D2", "letters"),
        ("last_name", "", "letters"),
        ("phone", "12345", "10-15 digits"),
        ("date_of_birth", "2020-01-01", "age"),
        ("date_of_birth", "1800-01-01", "age"),
        ("date_of_birth", "yesterday", "YYYY-MM-DD"),
    ],
)
def test_registration_rules_name_the_field(cnop_env: object, field: str, value: str, fragment: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        auth.register(user_payload(**{field: value}))
    assert err.value.field == field
    assert fragment in err.value.message
    with read_session() as session:
        assert session.exec(select(User)).all() == []


def test_long_passphrase_and_names_with_apostrophes_are_accepted(cnop_env: object) -> None:
    passphrase = "Correct horse battery staple 1! " * 4 + "Zz"
    assert len(passphrase) >= 128
    profile = auth.register(
        user_payload(
            "Mixed_Case_User",
            password=passphrase,
            first_name="Zoë",
            last_name="O'Brien-Smith",
            phone="+1 (555) 123-4567",
            date_of_birth="1990-05-17",
        )
    )
    assert profile.username == "mixed_case_user"
    assert profile.phone == "15551234567"
    assert auth.login("MIXED_case_user", passphrase).username == "mixed_case_user"


def test_duplicate_username_or_email_conflicts(cnop_env: object) -> None:
    auth.register(user_payload("alice_01"))
    with pytest.raises(Conflict) as err:
        auth.register(user_payload("ALICE_01", email="other@example.com"))
    assert err.value.field == "username"
    with pytest.raises(Conflict) as err:
        auth.register(user_payload("bob_0001", email="ALICE_01@example.com"))
    assert err.value.field == "email"


def test_unknown_user_and_wrong_password_look_the_same(cnop_env: object) -> None:
    auth.register(user_payload("alice_01"))
    with pytest.raises(AuthenticationFailed) as unknown:
        auth.login("nobody_here", STRONG_PASSWORD)
    with pytest.raises(AuthenticationFailed) as wrong:
        auth.login("alice_01", "Wrong-Password-99")
    assert unknown.value.message == wrong.value.message == "Invalid username or password"
    with read_session() as session:
        kinds = [e.event_type for e in session.exec(select(AuditEvent)).all()]
    assert kinds.count("login_failed") == 2


def test_token_claims_and_revocation(cnop_env: object) -> None:
    auth.register(user_payload("alice_01"))
    issued = auth.login("alice_01", STRONG_PASSWORD)
    claims = jwt.decode(issued.access_token, get_settings().jwt_secret, algorithms=["HS256"])
    assert {"sub", "role", "exp", "iat", "jti"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 3600
    principal = auth.authenticate(issued.access_token)
    assert principal.username == "alice_01" and principal.role == "customer"
    auth.logout(principal)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        auth.authenticate(issued.access_token)


def test_forged_expired_and_disabled_tokens_are_rejected(cnop_env: object) -> None:
    auth.register(user_payload("alice_01"))
    issued = auth.login("alice_01", STRONG_PASSWORD)
    claims = jwt.decode(issued.access_token, get_settings().jwt_secret, algorithms=["HS256"])
    forged = jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned, "garbage", "", issued.access_token + "x"):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(token)
    expired = jwt.encode(
        {**claims, "exp": int(time.time()) - 5, "iat": int(time.time()) - 100}, get_settings().jwt_secret, "HS256"
    )
    with pytest.raises(AuthenticationFailed, match="expired"):
        auth.authenticate(expired)
    with write_session() as session:
        user = session.exec(select(User).where(User.username == "alice_01")).one()
        user.is_active = False
        session.add(user)
    with pytest.raises(AuthenticationFailed, match="disabled"):
        auth.authenticate(issued.access_token)


def test_session_expiry_is_checked_server_side(cnop_env: object) -> None:
    auth.register(user_payload("alice_01"))
    issued = auth.login("alice_01", STRONG_PASSWORD)
    with write_session() as session:
        row = session.get(AuthSession, issued.jti)
        row.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        session.add(row)
    with pytest.raises(AuthenticationFailed, match="expired"):
        auth.authenticate(issued.access_token)


def test_password_change_revokes_other_sessions(cnop_env: object) -> None:
    auth.register(user_payload("alice_01"))
    first = auth.login("alice_01", STRONG_PASSWORD)
    second = auth.login("alice_01", STRONG_PASSWORD)
    principal = auth.authenticate(first.access_token)
    with pytest.raises(ValidationFailed) as err:
        auth.change_password(principal, "Wrong-Password-99", "New-Password-123")
    assert err.value.field == "current_password"
    assert auth.change_password(principal, STRONG_PASSWORD, "New-Password-123") == 1
    auth.authenticate(first.access_token)
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(second.access_token)
    with pytest.raises(AuthenticationFailed):
        auth.login("alice_01", STRONG_PASSWORD)
    assert auth.login("alice_01", "New-Password-123").username == "alice_01"


def test_bootstrap_admin(cnop_env: object, monkeypatch) -> None:
    monkeypatch.setenv("CNOP_ADMIN_USERNAME", "site_admin")
    monkeypatch.setenv("CNOP_ADMIN_PASSWORD", "Admin-Password-1")
    reset_settings()
    assert auth.bootstrap_admin() == "site_admin"
    assert auth.bootstrap_admin() == "site_admin"  # idempotent
    assert auth.login("site_admin", "Admin-Password-1").role == "admin"
