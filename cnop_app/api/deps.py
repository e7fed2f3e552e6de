"""Shared dependencies of the REST routes: the caller's identity and address."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cnop_app.domain.errors import AuthenticationFailed, Forbidden
from cnop_app.services import activity, auth

bearer = HTTPBearer(auto_error=False, description="The access_token from POST /api/v1/auth/login")


def client_ip(request: Request) -> str | None:
    # X-Forwarded-For is not trusted: anyone can send it (a lesson from the reference system).
    return request.client.host if request.client else None


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
