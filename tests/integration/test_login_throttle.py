"""Login throttling: growing delays per (username, client IP) and per IP, in the database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import select, update

from cnop_app.config import reset_settings
from cnop_app.db import read_session, write_session
from cnop_app.domain.errors import AuthenticationFailed, RateLimited, ValidationFailed
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import AuditEvent, LoginThrottle
from cnop_app.observability.metrics import REGISTRY
from cnop_app.services import auth
from tests.support.helpers import STRONG_PASSWORD, user_payload

WRONG = "Wrong-Password-99"
HOME, ELSEWHERE = "203.0.113.7", "198.51.100.9"


@pytest.fixture
def three_strikes(any_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CNOP_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("CNOP_LOGIN_IP_MAX_FAILURES", "8")
    reset_settings()
    auth.register(user_payload("alice_01"))
    return any_db


def _fail(username: str, ip: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationFailed):
            auth.login(username, WRONG, ip=ip)


def _unblock_all() -> None:
    with write_session() as session:
        session.execute(update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1)))


def _logins(outcome: str) -> float:
    return REGISTRY.get_sample_value("cnop_logins_total", {"outcome": outcome}) or 0.0


def test_failures_delay_that_address_only_and_the_owner_logs_in_elsewhere(three_strikes: str) -> None:
    throttled_before = _logins("throttled")
    _fail("alice_01", HOME, 3)
    with pytest.raises(RateLimited) as blocked:
        auth.login("alice_01", STRONG_PASSWORD, ip=HOME)  # the right password waits too, from there
    assert blocked.value.retry_after == 15  # first delay
    assert auth.login("alice_01", STRONG_PASSWORD, ip=ELSEWHERE).username == "alice_01"
    assert _logins("throttled") == throttled_before + 1
    with read_session() as session:
        kinds = [e.event_type for e in session.exec(select(AuditEvent)).all()]
    assert "login_throttle_started" in kinds and "login_throttled" in kinds


def test_delays_grow_and_a_success_starts_over(three_strikes: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_LOGIN_IP_MAX_FAILURES", "20")  # only the (username, IP) limit in play here
    reset_settings()
    _fail("alice_01", HOME, 3)
    delays = []
    for _ in range(3):
        _unblock_all()
        _fail("alice_01", HOME)
        with pytest.raises(RateLimited) as blocked:
            auth.login("alice_01", STRONG_PASSWORD, ip=HOME)
        delays.append(blocked.value.retry_after)
    assert delays == [30, 60, 120]
    _unblock_all()
    assert auth.login("alice_01", STRONG_PASSWORD, ip=HOME).username == "alice_01"
    _fail("alice_01", HOME, 2)  # counting starts over after a success
    assert auth.login("alice_01", STRONG_PASSWORD, ip=HOME).username == "alice_01"


def test_unknown_and_known_usernames_get_the_same_answers(three_strikes: str) -> None:
    _fail("alice_01", HOME, 3)
    _fail("ghost_user", HOME, 3)
    waits = []
    for name in ("alice_01", "ghost_user"):
        with pytest.raises(RateLimited) as blocked:
            auth.login(name, WRONG, ip=HOME)
        waits.append(blocked.value.retry_after)
    assert waits[0] == waits[1] == 15


def test_many_usernames_from_one_address_block_that_address(three_strikes: str) -> None:
    """Credential stuffing: a few tries each for many names, never three for one name."""
    for i in range(4):
        _fail(f"victim_{i:03d}", HOME, 2)  # 8 failures from HOME in all
    with pytest.raises(RateLimited):
        auth.login("alice_01", STRONG_PASSWORD, ip=HOME)
    assert auth.login("alice_01", STRONG_PASSWORD, ip=ELSEWHERE).username == "alice_01"


def test_malformed_input_is_422_before_any_work(three_strikes: str) -> None:
    for username, password, field in (
        ("x" * 60_000, STRONG_PASSWORD, "username"),
        ("bad name!", STRONG_PASSWORD, "username"),
        ("alice_01", "short", "password"),
        ("alice_01", "P" * 257, "password"),
    ):
        with pytest.raises(ValidationFailed) as err:
            auth.login(username, password, ip=HOME)
        assert err.value.field == field
    with read_session() as session:  # nothing stored, nothing counted
        assert session.exec(select(AuditEvent).where(AuditEvent.event_type == "login_failed")).first() is None
        assert session.exec(select(LoginThrottle)).first() is None


def test_concurrent_failures_all_count(three_strikes: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_LOGIN_MAX_FAILURES", "50")
    monkeypatch.setenv("CNOP_LOGIN_IP_MAX_FAILURES", "50")
    reset_settings()
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            _fail("alice_01", HOME, 2)
        except BaseException as exc:  # collected: a thread's assertion must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with read_session() as session:
        counts = sorted(r.failures for r in session.exec(select(LoginThrottle)).all())
    assert counts == [12, 12]  # the (username, IP) and the IP counters
