"""Profile page: view and edit the profile, change the password, see and end sessions."""

from __future__ import annotations

import asyncio

import reflex as rx

from cnop_app import formatting
from cnop_app.domain.errors import DomainError
from cnop_app.services import auth
from cnop_app.services.auth import Principal
from cnop_app.state.auth import FORM_CHECKED, AuthState, signed_in
from cnop_app.state.rows import PasswordErrors, ProfileErrors, SessionRow, error_for


class ProfileState(AuthState):
    loading: bool = True
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    date_of_birth: str = ""
    marketing_emails_consent: bool = False
    member_since: str = ""
    profile_errors: ProfileErrors = {}
    password_errors: PasswordErrors = {}
    sessions: list[SessionRow] = []

    def _fill(self, principal: Principal) -> None:
        profile = auth.get_profile(principal.username)
        self.email = profile.email
        self.first_name = profile.first_name
        self.last_name = profile.last_name
        self.phone = profile.phone or ""
        self.date_of_birth = profile.date_of_birth.isoformat() if profile.date_of_birth else ""
        self.marketing_emails_consent = profile.marketing_emails_consent
        self.member_since = formatting.utc_exact(profile.created_at)
        self.sessions = [
            SessionRow(
                id=s.jti,
                issued=formatting.relative_time(s.issued_at),
                exact=formatting.utc_exact(s.issued_at),
                agent=(s.user_agent or "unknown client")[:80],
                ip=s.ip or "—",
                current="yes" if s.jti == principal.jti else "",
            )
            for s in auth.active_sessions(principal.username)
        ]
        self.loading = False

    @rx.event
    @signed_in
    def load(self, principal: Principal) -> None:
        self.profile_errors = {}
        self.password_errors = {}
        self._fill(principal)

    @rx.event
    @signed_in
    def save_profile(self, principal: Principal, form: dict) -> rx.event.EventSpec | None:
        self.profile_errors = {}
        changes = {
            "email": form.get("email", ""),
            "first_name": form.get("first_name", ""),
            "last_name": form.get("last_name", ""),
            "phone": form.get("phone") or None,
            "date_of_birth": form.get("date_of_birth") or None,
            "marketing_emails_consent": form.get("marketing_emails_consent") in FORM_CHECKED,
        }
        try:
            auth.update_profile(principal.username, changes, ip=self._client_ip())
        except DomainError as exc:
            self.profile_errors = error_for(ProfileErrors, exc)
            return None
        self._fill(principal)
        return rx.toast.success("Profile saved")

    @rx.event
    @signed_in
    async def change_password(self, principal: Principal, form: dict) -> rx.event.EventSpec | None:
        self.password_errors = {}
        if form.get("new_password", "") != form.get("confirm_password", ""):
            self.password_errors = {"confirm_password": "Passwords do not match"}
            return None
        if refusal := await self._rate_limited(principal.username):
            self.password_errors = {"form": refusal}
            return None
        try:
            # Two argon2 runs: in a worker thread, so the event loop keeps serving other browsers.
            revoked = await asyncio.to_thread(
                auth.change_password,
                principal,
                form.get("current_password", ""),
                form.get("new_password", ""),
                ip=self._client_ip(),
            )
        except DomainError as exc:
            self.password_errors = error_for(PasswordErrors, exc)
            return None
        self._fill(principal)
        return rx.toast.success(f"Password changed; {revoked} other session(s) signed out")

    @rx.event
    @signed_in
    def revoke(self, principal: Principal, session_id: str) -> rx.event.EventSpec | rx.event.EventHandler:
        try:
            auth.revoke_session(principal.username, session_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        if session_id == principal.jti:
            return AuthState.logout
        self._fill(principal)
        return rx.toast.success("Session signed out")
