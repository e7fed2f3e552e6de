"""Shared dependencies of the REST routes: the caller's identity and address."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, MutableMapping
from functools import lru_cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cnop_app.config import get_settings
from cnop_app.db import db_executor
from cnop_app.domain import network
from cnop_app.domain.errors import AuthenticationFailed, Forbidden
from cnop_app.services import activity, auth

T = TypeVar("T")
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


def principal_of(credentials: HTTPAuthorizationCredentials | None) -> auth.Principal:
    """The verified caller (blocking: reads the session row)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("Not authenticated")
    principal = auth.authenticate(credentials.credentials)
    activity.record_user(principal.username)
    return principal


def current_principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> auth.Principal:
    return principal_of(credentials)


class _VerifiedBearer(HTTPBearer):
    """The bearer token, present and well signed (no I/O: runs on the event loop, no thread hop).

    As with `current_principal`, a missing or forged token is a 401 before the body is validated; the
    session and the user are checked by `as_caller` in the route's one thread hop."""

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthenticationFailed("Not authenticated")
        auth.verify_token(credentials.credentials)
        return credentials


# Same scheme name as `bearer`: one security scheme in the OpenAPI document.
verified_bearer = _VerifiedBearer(auto_error=False, scheme_name="HTTPBearer", description=bearer.model.description)
Credentials = Annotated[HTTPAuthorizationCredentials, Depends(verified_bearer)]


async def as_caller(credentials: HTTPAuthorizationCredentials, work: Callable[[auth.Principal], T]) -> T:
    """Authenticate the caller and run `work(principal)` in ONE worker-thread hop.

    Hot routes use this instead of `Depends(current_principal)` + a sync endpoint, which FastAPI runs as
    two thread-pool hops, each waking the event loop: on the order path that was most of the request.
    The context (request id, client address) goes along, so audit rows and logs keep naming them."""
    return await in_db_thread(lambda: work(principal_of(credentials)))


async def in_db_thread(work: Callable[[], T]) -> T:
    """Run blocking database work in the database executor (`db.db_executor`), in one hop."""
    context = contextvars.copy_context()  # request id and client address, as anyio's hop carries them
    return await asyncio.get_running_loop().run_in_executor(db_executor(), context.run, work)


def admin_principal(principal: auth.Principal = Depends(current_principal)) -> auth.Principal:
    if not principal.is_admin:
        raise Forbidden("Admin role required")
    return principal
