"""/api/v1/auth: register, login, logout, profile, password, sessions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from cnop_app.api.deps import client_ip, current_principal
from cnop_app.api.schemas.auth import PasswordChangedOut, ProfileOut, SessionOut, SessionsOut, TokenOut, UserMessageOut
from cnop_app.api.schemas.common import DateText, MessageOut, errors
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
    date_of_birth: DateText | None = None
    marketing_emails_consent: StrictBool = False


class LoginBody(BaseModel):
    username: StrictStr
    password: StrictStr


class ProfileUpdateBody(BaseModel):
    # Leave a field out to keep it; null clears only what may be empty (phone, date of birth).
    model_config = ConfigDict(extra="forbid")
    email: StrictStr = Field(default=None)
    first_name: StrictStr = Field(default=None)
    last_name: StrictStr = Field(default=None)
    phone: StrictStr | None = None
    date_of_birth: DateText | None = None
    marketing_emails_consent: StrictBool = Field(default=None)


class PasswordBody(BaseModel):
    current_password: StrictStr
    new_password: StrictStr


@router.post("/register", status_code=201, response_model=UserMessageOut, responses=errors(409, 413, 422))
def register(body: RegisterBody, request: Request) -> UserMessageOut:
    profile = auth.register(body.model_dump(), ip=client_ip(request))
    return UserMessageOut.of("User registered successfully", profile)


@router.post("/login", response_model=TokenOut, responses=errors(401, 413, 422, 429))
def login(body: LoginBody, request: Request) -> TokenOut:
    user_agent = request.headers.get("user-agent")
    return TokenOut.of(auth.login(body.username, body.password, user_agent=user_agent, ip=client_ip(request)))


@router.post("/logout", response_model=MessageOut, responses=errors(401))
def logout(request: Request, principal: auth.Principal = Depends(current_principal)) -> MessageOut:
    auth.logout(principal, ip=client_ip(request))
    return MessageOut(message="Logged out successfully")


@router.get("/profile", response_model=ProfileOut, responses=errors(401, 404))
def get_profile(principal: auth.Principal = Depends(current_principal)) -> ProfileOut:
    return ProfileOut.of(auth.get_profile(principal.username))


@router.put("/profile", response_model=UserMessageOut, responses=errors(401, 404, 409, 413, 422))
def update_profile(
    body: ProfileUpdateBody, request: Request, principal: auth.Principal = Depends(current_principal)
) -> UserMessageOut:
    changes = body.model_dump(exclude_unset=True)
    profile = auth.update_profile(principal.username, changes, ip=client_ip(request))
    return UserMessageOut.of("Profile updated successfully", profile)


@router.post("/password", response_model=PasswordChangedOut, responses=errors(401, 404, 413, 422))
def change_password(
    body: PasswordBody, request: Request, principal: auth.Principal = Depends(current_principal)
) -> PasswordChangedOut:
    revoked = auth.change_password(principal, body.current_password, body.new_password, ip=client_ip(request))
    return PasswordChangedOut(message="Password changed successfully", revoked_sessions=revoked)


@router.get("/sessions", response_model=SessionsOut, responses=errors(401))
def sessions(principal: auth.Principal = Depends(current_principal)) -> SessionsOut:
    rows = auth.active_sessions(principal.username)
    return SessionsOut(sessions=[SessionOut.of(r, principal.jti) for r in rows])


@router.delete("/sessions/{session_id}", response_model=MessageOut, responses=errors(401, 404, 422))
def revoke(session_id: str, request: Request, principal: auth.Principal = Depends(current_principal)) -> MessageOut:
    auth.revoke_session(principal.username, session_id, ip=client_ip(request))
    return MessageOut(message="Session revoked")
