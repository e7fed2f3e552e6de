"""Bodies of /api/v1/auth."""

from __future__ import annotations

from typing import Literal

from cnop_app.api.schemas.common import ApiModel, Day, Timestamp
from cnop_app.services import auth


class ProfileOut(ApiModel):
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: Day | None
    marketing_emails_consent: bool
    role: str
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, profile: auth.Profile) -> ProfileOut:
        return cls.model_validate(profile)


class UserMessageOut(ApiModel):
    message: str
    user: ProfileOut

    @classmethod
    def of(cls, message: str, profile: auth.Profile) -> UserMessageOut:
        return cls(message=message, user=ProfileOut.of(profile))


class TokenOut(ApiModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    username: str
    role: str

    @classmethod
    def of(cls, token: auth.IssuedToken) -> TokenOut:
        return cls(
            access_token=token.access_token,
            token_type="bearer",
            expires_in=token.expires_in,
            username=token.username,
            role=token.role,
        )


class PasswordChangedOut(ApiModel):
    message: str
    revoked_sessions: int


class SessionOut(ApiModel):
    session_id: str
    issued_at: Timestamp
    expires_at: Timestamp
    user_agent: str | None
    ip: str | None
    current: bool

    @classmethod
    def of(cls, row: auth.SessionView, current_jti: str) -> SessionOut:
        return cls(
            session_id=row.jti,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            user_agent=row.user_agent,
            ip=row.ip,
            current=row.jti == current_jti,
        )


class SessionsOut(ApiModel):
    sessions: list[SessionOut]
