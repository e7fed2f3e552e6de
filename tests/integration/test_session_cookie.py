"""The browser's session cookie (POST/DELETE /api/v1/session): HttpOnly, SameSite=strict, Secure behind
https, set only for a fresh claim of a live session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from cnop_app.api import session_cookie
from cnop_app.api.errors import install_error_handlers
from cnop_app.config import get_settings, reset_settings
from cnop_app.domain.errors import AuthenticationFailed
from cnop_app.services import auth
from tests.support.helpers import STRONG_PASSWORD, user_payload


@pytest.fixture
def browser(cnop_env: Path) -> Iterator[TestClient]:
    """The route mounted as the app mounts it (under /api/v1), behind a cookie-keeping client."""
    api = FastAPI()
    install_error_handlers(api)
    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(session_cookie.router)
    api.include_router(v1)
    with TestClient(api, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client


def _issued(username: str) -> auth.IssuedToken:
    auth.register(user_payload(username))
    return auth.login(username, STRONG_PASSWORD, user_agent="pytest-browser")


def _set_cookie(response: object) -> str:
    return response.headers["set-cookie"]  # type: ignore[attr-defined]


def test_a_claim_becomes_an_httponly_cookie_of_the_same_session(browser: TestClient) -> None:
    issued = _issued("cookie_user")
    response = browser.post(session_cookie.COOKIE_URL, json={"claim": session_cookie.issue_claim(issued)})
    assert response.status_code == 204
    header = _set_cookie(response).lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    assert "secure" not in header  # plain http in development: a Secure cookie would never be sent back
    token = browser.cookies[session_cookie.COOKIE_NAME]
    assert auth.authenticate(token).jti == issued.jti
    max_age = int(header.split("max-age=")[1].split(";")[0])
    assert 0 < max_age <= get_settings().jwt_expire_minutes * 60


def test_the_cookie_is_secure_behind_https(browser: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNOP_PUBLIC_URL", "https://cnop.example.com")
    reset_settings()
    issued = _issued("secure_user")
    response = browser.post(session_cookie.COOKIE_URL, json={"claim": session_cookie.issue_claim(issued)})
    assert response.status_code == 204
    assert "secure" in _set_cookie(response).lower()


def test_a_claim_is_no_token_and_a_token_is_no_claim(browser: TestClient) -> None:
    issued = _issued("claim_user")
    claim = session_cookie.issue_claim(issued)
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(claim)
    assert browser.post(session_cookie.COOKIE_URL, json={"claim": issued.access_token}).status_code == 401
    assert session_cookie.COOKIE_NAME not in browser.cookies


def test_expired_forged_or_ended_claims_set_no_cookie(browser: TestClient) -> None:
    issued = _issued("bad_claims")
    secret = get_settings().jwt_secret
    token_claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    past = int((datetime.now(timezone.utc) - timedelta(seconds=1)).timestamp())
    expired = jwt.encode({"aud": session_cookie.CLAIM_AUDIENCE, "exp": past, "tok": token_claims}, secret, "HS256")
    forged = jwt.encode(
        {"aud": session_cookie.CLAIM_AUDIENCE, "exp": past + 60, "tok": token_claims}, "x" * 40, "HS256"
    )
    for claim in (expired, forged, "", "x" * 5000):
        response = browser.post(session_cookie.COOKIE_URL, json={"claim": claim})
        assert response.status_code == 401, claim
    assert browser.post(session_cookie.COOKIE_URL, json={"claim": 7}).status_code == 422

    valid = session_cookie.issue_claim(issued)
    auth.logout(auth.authenticate(issued.access_token))
    assert browser.post(session_cookie.COOKIE_URL, json={"claim": valid}).status_code == 401
    assert session_cookie.COOKIE_NAME not in browser.cookies


def test_delete_logs_the_cookie_session_out_and_drops_the_cookie(browser: TestClient) -> None:
    issued = _issued("drop_cookie")
    browser.post(session_cookie.COOKIE_URL, json={"claim": session_cookie.issue_claim(issued)})
    assert session_cookie.COOKIE_NAME in browser.cookies
    response = browser.delete(session_cookie.COOKIE_URL)
    assert response.status_code == 204
    assert "max-age=0" in _set_cookie(response).lower() or "expires=" in _set_cookie(response).lower()
    assert session_cookie.COOKIE_NAME not in browser.cookies
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(issued.access_token)
    assert browser.delete(session_cookie.COOKIE_URL).status_code == 204  # nothing left: still fine


def test_token_from_the_handshake_cookie_header() -> None:
    name = session_cookie.COOKIE_NAME
    assert session_cookie.token_from_cookie_header(f"a=1; {name}=abc.def.ghi; b=2") == "abc.def.ghi"
    assert session_cookie.token_from_cookie_header(f'{name}="quoted"') == "quoted"
    assert session_cookie.token_from_cookie_header(f"x{name}=no; {name}x=no") == ""
    assert session_cookie.token_from_cookie_header("") == ""
    assert session_cookie.token_from_cookie_header(None) == ""
