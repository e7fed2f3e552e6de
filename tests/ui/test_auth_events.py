"""Login, registration and password changes in the UI: argon2 runs off the event loop, and the events are
throttled per client IP by the app's one client-IP rule, like the REST routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from reflex.istate.data import HeaderData, ReflexURL, RouterData, SessionData

from cnop_app.config import reset_settings
from cnop_app.services.auth import passwords
from cnop_app.state.auth import AuthState
from cnop_app.state.profile import ProfileState
from tests.support.helpers import STRONG_PASSWORD, user_payload
from tests.ui.helpers import session_token, sign_up, tab

SLOW_HASH_S = 0.3
NEW_PASSWORD = "Another-Strong-9"
PASSWORD_CHANGE = {"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}


class _SlowArgon2:
    """passlib's context, each hash and verify holding its thread SLOW_HASH_S longer (no await point)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def hash(self, password: str) -> str:
        time.sleep(SLOW_HASH_S)
        return self.real.hash(password)

    def verify(self, password: str, password_hash: str) -> bool:
        time.sleep(SLOW_HASH_S)
        return self.real.verify(password, password_hash)

    def needs_update(self, password_hash: str) -> bool:
        return self.real.needs_update(password_hash)


@pytest.fixture
def slow_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    passwords.dummy_hash()  # made once per process, before the slowdown
    monkeypatch.setattr(passwords, "_pwd", _SlowArgon2(passwords._pwd))


def _loop_ticks_during(make: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[int, Any]:
    """How often a 10 ms heartbeat ran on the event loop while the event handler ran."""

    async def scenario() -> tuple[int, Any]:
        ticks = 0
        done = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        result = await make()
        done.set()
        await beat
        return ticks, result

    return asyncio.run(scenario())


def test_login_hashes_off_the_event_loop(ui_env: Path, slow_argon2: None) -> None:
    sign_up("loop_login")
    state = tab(AuthState, "/login")
    ticks, _ = _loop_ticks_during(lambda: state.login({"username": "loop_login", "password": STRONG_PASSWORD}))
    assert state.username == "loop_login" and session_token(state)
    assert ticks >= 10  # blocked, the loop would not tick once in those 300 ms


def test_register_hashes_off_the_event_loop(ui_env: Path, slow_argon2: None) -> None:
    state = tab(AuthState, "/register")
    form = {**user_payload("loop_register"), "confirm_password": STRONG_PASSWORD}
    ticks, _ = _loop_ticks_during(lambda: state.register(form))
    assert state.username == "loop_register"
    assert ticks >= 10


def test_password_change_hashes_off_the_event_loop(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign_up("loop_passwd")
    passwords.dummy_hash()
    monkeypatch.setattr(passwords, "_pwd", _SlowArgon2(passwords._pwd))
    state = tab(ProfileState, "/profile", token=token)
    form = PASSWORD_CHANGE
    ticks, _ = _loop_ticks_during(lambda: state.change_password(form))
    assert state.password_errors == {}
    assert ticks >= 10


def test_password_change_without_a_session_runs_no_hash(ui_env: Path) -> None:
    state = tab(ProfileState, "/profile", token="not-a-jwt")
    form = PASSWORD_CHANGE
    assert asyncio.run(state.change_password(form)) is AuthState.require_login


def _from(peer: str, forwarded_for: str = "") -> RouterData:
    raw = {"asgi-scope-client": peer, **({"x-forwarded-for": forwarded_for} if forwarded_for else {})}
    return RouterData(
        url=ReflexURL("http://localhost:3000/login"),
        headers=HeaderData(user_agent="pytest-browser", raw_headers=raw),  # type: ignore[arg-type]
        session=SessionData(client_ip=peer, session_id="socket-1"),
    )


def test_client_ip_follows_the_trusted_proxy_rule(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tab(AuthState, "/login")
    state.router = _from("10.0.0.5", "203.0.113.7")
    assert state._client_ip() == "10.0.0.5"  # anyone can send X-Forwarded-For
    monkeypatch.setenv("CNOP_TRUSTED_PROXIES", "10.0.0.0/8")
    reset_settings()
    assert state._client_ip() == "203.0.113.7"


def test_failed_ui_logins_are_throttled_per_client_ip_before_any_hash(
    ui_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up("throttled_ui")
    monkeypatch.setenv("CNOP_TRUSTED_PROXIES", "10.0.0.0/8")
    reset_settings()
    verified: list[str] = []
    real = passwords._pwd

    class Counting(_SlowArgon2):
        def verify(self, password: str, password_hash: str) -> bool:
            verified.append(password)
            return real.verify(password, password_hash)

    passwords.dummy_hash()
    monkeypatch.setattr(passwords, "_pwd", Counting(real))
    attacker = tab(AuthState, "/login")
    attacker.router = _from("10.0.0.5", "198.51.100.1")
    wrong = {"username": "throttled_ui", "password": "wrong-Password-1"}
    for _ in range(5):
        asyncio.run(attacker.login(wrong))
        assert attacker.auth_error == "Invalid username or password"
    hashed = len(verified)
    asyncio.run(attacker.login({"username": "throttled_ui", "password": STRONG_PASSWORD}))
    assert attacker.auth_error.startswith("Too many failed login attempts") and session_token(attacker) == ""
    assert len(verified) == hashed  # refused before argon2 ran

    owner = tab(AuthState, "/login")  # same proxy, another client behind it
    owner.router = _from("10.0.0.5", "198.51.100.2")
    asyncio.run(owner.login({"username": "throttled_ui", "password": STRONG_PASSWORD}))
    assert owner.auth_error == "" and owner.username == "throttled_ui"


def test_auth_events_share_the_rest_api_limits_per_client_ip(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Login, registration and password events spend the REST `auth` group's tokens: per client IP (and
    per user for a password change), refused before any hash runs."""
    token = sign_up("limited_ui")
    monkeypatch.setenv("CNOP_RATE_LIMIT_AUTH_IP", "3/minute")
    reset_settings()
    hashes: list[str] = []
    real = passwords._pwd

    class Counting(_SlowArgon2):
        def verify(self, password: str, password_hash: str) -> bool:
            hashes.append(password)
            return real.verify(password, password_hash)

        def hash(self, password: str) -> str:
            hashes.append(password)
            return real.hash(password)

    passwords.dummy_hash()
    monkeypatch.setattr(passwords, "_pwd", Counting(real))
    flooder = tab(AuthState, "/login")
    flooder.router = _from("192.0.2.10")
    for _ in range(3):
        asyncio.run(flooder.login({"username": "limited_ui", "password": "wrong-Password-1"}))
        assert flooder.auth_error == "Invalid username or password"
    spent = len(hashes)
    asyncio.run(flooder.login({"username": "limited_ui", "password": STRONG_PASSWORD}))
    assert flooder.auth_error.startswith("Too many attempts; try again in ")
    register = {**user_payload("limited_new"), "confirm_password": STRONG_PASSWORD}
    asyncio.run(flooder.register(register))
    assert flooder.auth_error.startswith("Too many attempts") and flooder.username == ""
    profile = tab(ProfileState, "/profile", token=token)
    profile.router = RouterData(
        url=ReflexURL("http://localhost:3000/profile"),
        headers=HeaderData(cookie=f"cnop_token={token}", raw_headers={"asgi-scope-client": "192.0.2.10"}),  # type: ignore[arg-type]
        session=SessionData(client_ip="192.0.2.10", session_id="socket-1"),
    )
    asyncio.run(profile.change_password(PASSWORD_CHANGE))
    assert profile.password_errors.get("form", "").startswith("Too many attempts")
    assert len(hashes) == spent  # no argon2 for refused events

    elsewhere = tab(AuthState, "/login")
    elsewhere.router = _from("192.0.2.11")
    asyncio.run(elsewhere.login({"username": "limited_ui", "password": STRONG_PASSWORD}))
    assert elsewhere.username == "limited_ui"
