"""Shared dependencies of the REST routes: the caller's identity and address."""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cnop_app.config import get_settings
from cnop_app.domain import network
from cnop_app.domain.errors import AuthenticationFailed, Forbidden
from cnop_app.services import activity, auth

bearer = HTTPBearer(auto_error=False, description="The access_token from POST /api/v1/auth/login")


def scope_client_ip(scope: MutableMapping[str, Any]) -> str | None:
    """The client's IP for an ASGI request: `network.client_ip`, the one rule (trusted proxies only)."""
    client = scope.get("client")
    peer = client[0] if client else None
    # Several X-Forwarded-For headers read as one list, in order (RFC 9110 field combination).
    hops = [value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"]
    forwarded = b",".join(hops).decode("latin-1") if hops else None
    return _client_ip(peer, forwarded, get_settings().trusted_networks)


# Memoised: the same clients come back request after request (address parsing is most of the cost).
_client_ip = lru_cache(maxsize=4096)(network.client_ip)


def client_ip(request: Request) -> str | None:
    return scope_client_ip(request.scope)


def current_principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> auth.Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("Not authenticated")
    principal = auth.authenticate(credentials.credentials)
    activity.record_user(principal.username)
    return principal


def admin_principal(principal: auth.Principal = Depends(current_principal)) -> auth.Principal:
    if not principal.is_admin:
        raise Forbidden("Admin role required")
    return principal
