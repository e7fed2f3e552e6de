"""Security findings in the auth services: the bootstrap admin (A2), guessing the current password (A8),
token rejections and suspicious events counted, and audit rows that say which request and client."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from cnop_app.api import create_api
from cnop_app.config import ConfigError, get_settings, reset_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import AuthenticationFailed, RateLimited, ValidationFailed
from cnop_app.manage import main as manage_main
from cnop_app.models import AuditEvent, AuthSession, User
from cnop_app.observability.logging import request_id_var
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import audit, auth
from cnop_app.services.auth import metrics as auth_metrics
from tests.support.helpers import STRONG_PASSWORD, user_payload

ADMIN = "site_admin"
ADMIN_PASSWORD = "Admin-Password-1"
NEW_PASSWORD = "New-Password-123"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def audit_rows(event_type: str, username: str | None = None) -> list[AuditEvent]:
    with read_session() as session:
        query = select(AuditEvent).where(AuditEvent.event_type == event_type)
        if username is not None:
            query = query.where(AuditEvent.username == username)
        return list(session.exec(query.order_by(AuditEvent.id)).all())


def get_user(username: str) -> User:
    with read_session() as session:
        return session.exec(select(User).where(User.username == username)).one()


@pytest.fixture
def admin_configured(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_ADMIN_USERNAME", ADMIN)
    monkeypatch.setenv("CNOP_ADMIN_PASSWORD", ADMIN_PASSWORD)
    reset_settings()


@pytest.fixture
def low_threshold(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Delays start at the third failure; the API's own rate limits are off (they would answer 429 first)."""
    monkeypatch.setenv("CNOP_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("CNOP_RATE_LIMIT_ENABLED", "false")
    reset_settings()


# --- A2: the bootstrap admin --------------------------------------------------------------------------


def test_a_name_registered_before_the_first_start_is_not_promoted(admin_configured: None) -> None:
    auth.register(user_payload(ADMIN, password="Attacker-Pass-9"))
    with pytest.raises(ConfigError, match=f"CNOP_ADMIN_USERNAME: '{ADMIN}' already exists as a customer account"):
        auth.bootstrap_admin()
    # The attacker's account stays a customer; its password does not open an admin session.
    assert get_user(ADMIN).role == "customer"
    assert auth.login(ADMIN, "Attacker-Pass-9").role == "customer"
    (refused,) = audit_rows("bootstrap_admin_refused", ADMIN)
    assert refused.actor == "bootstrap"


def test_manage_seed_fails_naming_the_problem(admin_configured: None) -> None:
    auth.register(user_payload(ADMIN))
    with pytest.raises(ConfigError, match="not made an admin"):
        manage_main(["seed"])
    assert get_user(ADMIN).role == "customer"


def test_a_disabled_admin_stays_disabled_with_a_warning(admin_configured: None) -> None:
    assert auth.bootstrap_admin() == ADMIN
    with write_session() as session:
        user = session.exec(select(User).where(User.username == ADMIN)).one()
        user.is_active = False
        session.add(user)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("cnop.auth.users")
    logger.addHandler(handler)
    try:
        assert auth.bootstrap_admin() == ADMIN
    finally:
        logger.removeHandler(handler)
    assert not get_user(ADMIN).is_active
    assert [r.levelno for r in records] == [logging.WARNING]
    assert "stays disabled" in records[0].getMessage()
    with pytest.raises(AuthenticationFailed):
        auth.login(ADMIN, ADMIN_PASSWORD)


def test_an_admin_keeps_the_password_it_changed_to(admin_configured: None) -> None:
    assert auth.bootstrap_admin() == ADMIN
    principal = auth.authenticate(auth.login(ADMIN, ADMIN_PASSWORD).access_token)
    auth.change_password(principal, ADMIN_PASSWORD, NEW_PASSWORD)
    assert auth.bootstrap_admin() == ADMIN  # the next start
    assert auth.login(ADMIN, NEW_PASSWORD).role == "admin"
    with pytest.raises(AuthenticationFailed):
        auth.login(ADMIN, ADMIN_PASSWORD)


# --- A8: guessing the current password ----------------------------------------------------------------


def test_wrong_current_passwords_are_throttled_like_logins(low_threshold: None) -> None:
    auth.register(user_payload("alice_01"))
    principal = auth.authenticate(auth.login("alice_01", STRONG_PASSWORD, ip="203.0.113.5").access_token)
    guessing = sample("cnop_suspicious_events_total", kind="password_guessing")
    started = sample("cnop_login_throttle_events_total", scope="user_ip")
    for _ in range(3):  # the third wrong one starts the delay
        with pytest.raises(ValidationFailed) as err:
            auth.change_password(principal, "Wrong-Password-99", NEW_PASSWORD, ip="203.0.113.5")
        assert err.value.field == "current_password"
    # Blocked now, the right password included: no hashing, a Retry-After.
    with pytest.raises(RateLimited) as blocked:
        auth.change_password(principal, STRONG_PASSWORD, NEW_PASSWORD, ip="203.0.113.5")
    assert 1 <= blocked.value.retry_after <= 15
    # The same counters as logins: this client cannot switch to guessing at the login form.
    with pytest.raises(RateLimited):
        auth.login("alice_01", STRONG_PASSWORD, ip="203.0.113.5")
    # The owner from another address is not affected.
    assert auth.change_password(principal, STRONG_PASSWORD, NEW_PASSWORD, ip="198.51.100.7") == 0

    assert len(audit_rows("password_change_failed", "alice_01")) == 3
    (start,) = audit_rows(audit.THROTTLE_STARTED, "alice_01")
    assert json.loads(start.detail) == {"scope": "user_ip", "via": "password_change"}
    assert start.ip == "203.0.113.5"
    assert len(audit_rows("password_change_throttled", "alice_01")) == 1
    assert sample("cnop_suspicious_events_total", kind="password_guessing") == guessing + 1
    assert sample("cnop_login_throttle_events_total", scope="user_ip") == started + 1


def test_a_right_current_password_starts_the_count_over(low_threshold: None) -> None:
    auth.register(user_payload("alice_01"))
    principal = auth.authenticate(auth.login("alice_01", STRONG_PASSWORD).access_token)
    for _ in range(2):
        with pytest.raises(ValidationFailed):
            auth.change_password(principal, "Wrong-Password-99", NEW_PASSWORD, ip="203.0.113.5")
    auth.change_password(principal, STRONG_PASSWORD, NEW_PASSWORD, ip="203.0.113.5")
    for _ in range(2):  # two more: still under the threshold of three
        with pytest.raises(ValidationFailed):
            auth.change_password(principal, "Wrong-Password-99", STRONG_PASSWORD, ip="203.0.113.5")
    assert auth.change_password(principal, NEW_PASSWORD, STRONG_PASSWORD, ip="203.0.113.5") == 0


@pytest.fixture
def api(low_threshold: None) -> Iterator[TestClient]:
    with TestClient(create_api(), raise_server_exceptions=False) as client:
        yield client


def test_the_api_answers_429_with_retry_after(api: TestClient) -> None:
    api.post("/api/v1/auth/register", json=user_payload("alice_01"))
    token = api.post("/api/v1/auth/login", json={"username": "alice_01", "password": STRONG_PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    wrong = {"current_password": "Wrong-Password-99", "new_password": NEW_PASSWORD}
    for _ in range(3):
        assert api.post("/api/v1/auth/password", json=wrong, headers=headers).status_code == 422
    right = {"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}
    response = api.post("/api/v1/auth/password", json=right, headers=headers)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 15
    assert response.json() == {"detail": "Too many wrong passwords; try again later"}


# --- C: token rejections, suspicious events, audit context ---------------------------------------------


def test_token_rejections_are_counted_by_reason(any_db: str) -> None:
    auth.register(user_payload("alice_01"))
    before = {reason: sample("cnop_token_rejections_total", reason=reason) for reason in auth_metrics.REJECTION_REASONS}
    for garbage in ("", "not-a-jwt", jwt.encode({"sub": "alice_01"}, "another-secret-" + "y" * 30)):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(garbage)
    now = datetime.now(timezone.utc)
    claims = {"sub": "alice_01", "jti": "x", "iat": int((now - timedelta(hours=2)).timestamp())}
    expired = jwt.encode({**claims, "exp": int((now - timedelta(hours=1)).timestamp())}, get_settings().jwt_secret)
    with pytest.raises(AuthenticationFailed, match="expired"):
        auth.authenticate(expired)
    issued = auth.login("alice_01", STRONG_PASSWORD)
    with write_session() as session:
        user = session.exec(select(User).where(User.username == "alice_01")).one()
        user.is_active = False
        session.add(user)
    with pytest.raises(AuthenticationFailed, match="disabled"):
        auth.authenticate(issued.access_token)
    after = {reason: sample("cnop_token_rejections_total", reason=reason) for reason in auth_metrics.REJECTION_REASONS}
    assert {reason: after[reason] - before[reason] for reason in after} == {
        "invalid": 3,
        "expired": 1,
        "revoked": 0,
        "disabled": 1,
    }


def test_a_revoked_token_presented_again_is_audited_and_suspicious(any_db: str) -> None:
    auth.register(user_payload("alice_01"))
    issued = auth.login("alice_01", STRONG_PASSWORD, ip="203.0.113.5")
    auth.logout(auth.authenticate(issued.access_token), ip="203.0.113.5")
    revoked = sample("cnop_token_rejections_total", reason="revoked")
    reuse = sample("cnop_suspicious_events_total", kind="revoked_token_reuse")
    token = audit.bind_client("198.51.100.66", "curl/8.0")
    request = request_id_var.set("req-reuse-1")
    try:
        for _ in range(2):
            with pytest.raises(AuthenticationFailed, match="revoked"):
                auth.authenticate(issued.access_token)
    finally:
        request_id_var.reset(request)
        audit.unbind_client(token)
    assert sample("cnop_token_rejections_total", reason="revoked") == revoked + 2
    assert sample("cnop_suspicious_events_total", kind="revoked_token_reuse") == reuse + 2
    rows = audit_rows(audit.REVOKED_TOKEN_PRESENTED, "alice_01")
    assert len(rows) == 2
    assert (rows[0].ip, rows[0].user_agent, rows[0].request_id) == ("198.51.100.66", "curl/8.0", "req-reuse-1")
    assert json.loads(rows[0].detail)["jti"] == issued.jti


def test_audit_rows_carry_request_id_ip_and_user_agent_bounded(any_db: str) -> None:
    token = audit.bind_client("192.0.2.10", "Mozilla/5.0 " + "x" * 1000)
    request = request_id_var.set("req-42")
    try:
        auth.register(user_payload("alice_01"))
        with pytest.raises(AuthenticationFailed):
            auth.login("alice_01", "Wrong-Password-99")
    finally:
        request_id_var.reset(request)
        audit.unbind_client(token)
    (failed,) = audit_rows("login_failed", "alice_01")
    assert failed.request_id == "req-42" and failed.ip == "192.0.2.10"
    assert failed.user_agent is not None and len(failed.user_agent) == audit.USER_AGENT_MAX
    (registered,) = audit_rows("user_registered", "alice_01")
    assert registered.request_id == "req-42"
    # An explicit IP wins over the bound client's.
    with write_session() as session:
        audit.record(session, "probe", "alice_01", ip="198.51.100.1", request_id="given")
    (probe,) = audit_rows("probe")
    assert (probe.ip, probe.request_id, probe.user_agent) == ("198.51.100.1", "given", None)


def test_audit_metrics_count_only_committed_rows(any_db: str) -> None:
    before = sample("cnop_audit_events_total", event="probe_rolled_back")
    admin_actions = sample("cnop_suspicious_events_total", kind="admin_action")
    with pytest.raises(RuntimeError):
        with write_session() as session:
            audit.record(session, "probe_rolled_back", "alice_01", actor="admin_01")
            raise RuntimeError("roll back")
    assert sample("cnop_audit_events_total", event="probe_rolled_back") == before
    with write_session() as session:
        audit.record(session, "probe_rolled_back", "alice_01", actor="admin_01")
        assert sample("cnop_audit_events_total", event="probe_rolled_back") == before  # not yet committed
    assert sample("cnop_audit_events_total", event="probe_rolled_back") == before + 1
    assert sample("cnop_suspicious_events_total", kind="admin_action") == admin_actions + 1


def test_many_usernames_from_one_ip_is_a_suspicious_event(any_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_LOGIN_IP_MAX_FAILURES", "4")
    reset_settings()
    before = sample("cnop_suspicious_events_total", kind="many_usernames_one_ip")
    ip_blocks = sample("cnop_login_throttle_events_total", scope="ip")
    for number in range(4):
        with pytest.raises(AuthenticationFailed):
            auth.login(f"victim_{number:02d}", "Wrong-Password-99", ip="203.0.113.99")
    assert sample("cnop_suspicious_events_total", kind="many_usernames_one_ip") == before + 1
    assert sample("cnop_login_throttle_events_total", scope="ip") == ip_blocks + 1


def test_active_sessions_gauge(any_db: str) -> None:
    auth.register(user_payload("alice_01"))
    first = auth.login("alice_01", STRONG_PASSWORD)
    auth.login("alice_01", STRONG_PASSWORD)
    expired = auth.login("alice_01", STRONG_PASSWORD)
    with write_session() as session:
        row = session.get(AuthSession, expired.jti)
        row.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        session.add(row)
    auth.logout(auth.authenticate(first.access_token))
    assert auth_metrics.count_active_sessions() == 1
    assert sample("cnop_active_sessions") == 1


def test_metric_labels_never_carry_names_or_addresses(cnop_env: Path) -> None:
    for name in ("cnop_token_rejections_total", "cnop_suspicious_events_total", "cnop_login_throttle_events_total"):
        families = [m for m in REGISTRY.collect() if m.name == name.removesuffix("_total")]
        (family,) = families
        label_names = {key for s in family.samples for key in s.labels}
        assert label_names <= {"reason", "kind", "scope"}, name
