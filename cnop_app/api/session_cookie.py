"""The browser's session cookie, HttpOnly: page scripts never see the token.

The web UI logs in over its websocket (Reflex events), and an event cannot set an HttpOnly cookie. So a
login event hands the page a claim (signed, valid for `CLAIM_SECONDS`, carrying no secret) that the page
posts here at once; the answer sets the cookie. Every later websocket of the browser sends the cookie in
its handshake, where the UI's states read it (`AuthState`). The REST API keeps using bearer tokens only.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, StrictStr

from cnop_app.api.deps import client_ip
from cnop_app.config import get_settings
from cnop_app.domain.errors import AuthenticationFailed, DomainError
from cnop_app.services import auth

COOKIE_NAME = "cnop_token"
# Mounted under /api/v1: the browser posts its claim to COOKIE_URL.
COOKIE_URL = "/api/v1/session"
CLAIM_AUDIENCE = "cnop-session-cookie"
CLAIM_SECONDS = 30
MAX_CLAIM_LENGTH = 4096

router = APIRouter(prefix="/session", tags=["session"], include_in_schema=False)


class ClaimBody(BaseModel):
    claim: StrictStr


def issue_claim(issued: auth.IssuedToken) -> str:
    """A claim for the cookie of a session just opened. It carries the token's claims (no secret) and an
    audience, so `auth.authenticate` refuses the claim itself as a token."""
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    expires = datetime.now(timezone.utc) + timedelta(seconds=CLAIM_SECONDS)
    payload = {"aud": CLAIM_AUDIENCE, "exp": int(expires.timestamp()), "tok": claims}
    return jwt.encode(payload, get_settings().jwt_secret, algorithm=auth.JWT_ALGORITHM)


def redeem_claim(claim: object) -> tuple[str, auth.Principal]:
    """The session token a claim stands for, and its principal; 401 for a bad or expired claim, or for a
    session that has ended since."""
    if not isinstance(claim, str) or not claim or len(claim) > MAX_CLAIM_LENGTH:
        raise AuthenticationFailed("Invalid session claim")
    secret = get_settings().jwt_secret
    try:
        data = jwt.decode(
            claim, secret, algorithms=[auth.JWT_ALGORITHM], audience=CLAIM_AUDIENCE, options={"require": ["exp", "aud"]}
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("Invalid or expired session claim") from exc
    token_claims = data.get("tok")
    if not isinstance(token_claims, dict):
        raise AuthenticationFailed("Invalid session claim")
    token = jwt.encode(token_claims, secret, algorithm=auth.JWT_ALGORITHM)
    return token, auth.authenticate(token)


def token_from_cookie_header(header: str | None) -> str:
    """The session token in a `Cookie:` request header ("" when there is none)."""
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE_NAME:
            return value.strip().strip('"')
    return ""


def store_cookie_script(claim: str) -> str:
    """JavaScript for the page: post the claim, the browser keeps the answer's cookie."""
    options: dict[str, Any] = {
        "method": "POST",
        "credentials": "same-origin",
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"claim": claim}),
    }
    return f"fetch({json.dumps(COOKIE_URL)}, {json.dumps(options)})"


def forget_cookie_script() -> str:
    """JavaScript for the page: ask the server to drop the cookie (the page cannot, it is HttpOnly)."""
    options = {"method": "DELETE", "credentials": "same-origin"}
    return f"fetch({json.dumps(COOKIE_URL)}, {json.dumps(options)})"


def _secure() -> bool:
    # Behind TLS the cookie never travels in clear text; plain http (development) cannot set Secure ones.
    return get_settings().public_url.lower().startswith("https://")


def _cookie_options() -> dict[str, Any]:
    return {"path": "/", "secure": _secure(), "httponly": True, "samesite": "strict"}


@router.post("", status_code=204, response_class=Response)
def store_cookie(body: ClaimBody) -> Response:
    token, principal = redeem_claim(body.claim)
    seconds_left = int((principal.expires_at - datetime.now(timezone.utc)).total_seconds())
    response = Response(status_code=204)
    response.set_cookie(COOKIE_NAME, token, max_age=max(seconds_left, 1), **_cookie_options())
    return response


@router.delete("", status_code=204, response_class=Response)
def clear_cookie(request: Request) -> Response:
    """Log out the cookie's session (if it is still active) and drop the cookie."""
    token = request.cookies.get(COOKIE_NAME)
    if token:
        try:
            auth.logout(auth.authenticate(token), ip=client_ip(request))
        except DomainError:
            pass  # already ended: the outcome the caller wants
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, **_cookie_options())
    return response
