"""/api/v1/auth: register, login, logout, profile, password, sessions."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr

from cnop_app.api.deps import client_ip, current_principal
from cnop_app.domain.errors import AuthenticationFailed, RateLimited
from cnop_app.observability.metrics import AUTH_EVENTS
from cnop_app.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: StrictStr
    email: StrictStr
    password: StrictStr
    first_name: StrictStr
    last_name: StrictStr
    phone: StrictStr | None = None
    date_of_birth: date | None = None
    marketing_emails_consent: StrictBool = False


class LoginBody(BaseModel):
    username: StrictStr
    password: StrictStr


class ProfileUpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: StrictStr | None = None
    first_name: StrictStr | None = None
    last_name: StrictStr | None = None
    phone: StrictStr | None = None
    date_of_birth: date | None = None
    marketing_emails_consent: StrictBool | None = None


class PasswordBody(BaseModel):
    current_password: StrictStr
    new_password: StrictStr


@router.post("/register", status_code=201)
def register(body: RegisterBody, request: Request) -> dict[str, Any]:
    profile = auth.register(body.model_dump(), ip=client_ip(request))
    return {"message": "User registered successfully", "user": profile.as_dict()}


@router.post("/login")
def login(body: LoginBody, request: Request) -> dict[str, Any]:
    try:
        token = auth.login(
            body.username, body.password, user_agent=request.headers.get("user-agent"), ip=client_ip(request)
        )
    except (AuthenticationFailed, RateLimited):
        AUTH_EVENTS.labels("login_failed").inc()
        raise
    AUTH_EVENTS.labels("login_ok").inc()
    return {
        "access_token": token.access_token,
        "token_type": "bearer",
        "expires_in": token.expires_in,
        "username": token.username,
        "role": token.role,
    }


@router.post("/logout")
def logout(request: Request, principal: auth.Principal = Depends(current_principal)) -> dict[str, str]:
    auth.logout(principal, ip=client_ip(request))
    AUTH_EVENTS.labels("logout").inc()
    return {"message": "Logged out successfully"}


@router.get("/profile")
def get_profile(principal: auth.Principal = Depends(current_principal)) -> dict[str, Any]:
    return auth.get_profile(principal.username).as_dict()


@router.put("/profile")
def update_profile(
    body: ProfileUpdateBody, request: Request, principal: auth.Principal = Depends(current_principal)
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    profile = auth.update_profile(principal.username, changes, ip=client_ip(request))
    return {"message": "Profile updated successfully", "user": profile.as_dict()}


@router.post("/password")
def change_password(
    body: PasswordBody, request: Request, principal: auth.Principal = Depends(current_principal)
) -> dict[str, Any]:
    revoked = auth.change_password(principal, body.current_password, body.new_password, ip=client_ip(request))
    return {"message": "Password changed successfully", "revoked_sessions": revoked}


@router.get("/sessions")
def sessions(principal: auth.Principal = Depends(current_principal)) -> dict[str, Any]:
    rows = auth.active_sessions(principal.username)
    return {
        "sessions": [
            {
                "session_id": r.jti,
                "issued_at": r.issued_at.isoformat(),
                "expires_at": r.expires_at.isoformat(),
                "user_agent": r.user_agent,
                "ip": r.ip,
                "current": r.jti == principal.jti,
            }
            for r in rows
        ]
    }


@router.delete("/sessions/{session_id}")
def revoke(session_id: str, request: Request, principal: auth.Principal = Depends(current_principal)) -> dict[str, str]:
    auth.revoke_session(principal.username, session_id, ip=client_ip(request))
    return {"message": "Session revoked"}
