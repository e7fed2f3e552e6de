"""Profile page: view and edit the profile, change the password, see and end sessions."""

from __future__ import annotations

import reflex as rx

from cnop_app import formatting
from cnop_app.domain.errors import DomainError
from cnop_app.services import auth
from cnop_app.state.auth import AuthState


class ProfileState(AuthState):
    loading: bool = True
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    date_of_birth: str = ""
    marketing_emails_consent: bool = False
    member_since: str = ""
    profile_errors: dict[str, str] = {}
    password_errors: dict[str, str] = {}
    sessions: list[dict[str, str]] = []

    def _fill(self, username: str, jti: str) -> None:
        profile = auth.get_profile(username)
        self.email = profile.email
        self.first_name = profile.first_name
        self.last_name = profile.last_name
        self.phone = profile.phone or ""
        self.date_of_birth = profile.date_of_birth.isoformat() if profile.date_of_birth else ""
        self.marketing_emails_consent = profile.marketing_emails_consent
        self.member_since = formatting.utc_exact(profile.created_at)
        self.sessions = [
            {
                "id": s.jti,
                "issued": formatting.relative_time(s.issued_at),
                "exact": formatting.utc_exact(s.issued_at),
                "agent": (s.user_agent or "unknown client")[:80],
                "ip": s.ip or "—",
                "current": "yes" if s.jti == jti else "",
            }
            for s in auth.active_sessions(username)
        ]
        self.loading = False

    @rx.event
    def load(self) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        principal = self.principal()
        if principal is None:
            return AuthState.require_login
        self.profile_errors = {}
        self.password_errors = {}
        self._fill(principal.username, principal.jti)
        return None

    @rx.event
    def save_profile(self, form: dict) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        principal = self.principal()
        if principal is None:
            return AuthState.require_login
        self.profile_errors = {}
        changes = {
            "email": form.get("email", ""),
            "first_name": form.get("first_name", ""),
            "last_name": form.get("last_name", ""),
            "phone": form.get("phone") or None,
            "date_of_birth": form.get("date_of_birth") or None,
            "marketing_emails_consent": form.get("marketing_emails_consent") in ("on", True, "true"),
        }
        try:
            auth.update_profile(principal.username, changes, ip=self.router.session.client_ip or None)
        except DomainError as exc:
            self.profile_errors = {exc.field or "form": exc.message}
            return None
        self._fill(principal.username, principal.jti)
        return rx.toast.success("Profile saved")

    @rx.event
    def change_password(self, form: dict) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        principal = self.principal()
        if principal is None:
            return AuthState.require_login
        self.password_errors = {}
        if form.get("new_password", "") != form.get("confirm_password", ""):
            self.password_errors = {"confirm_password": "Passwords do not match"}
            return None
        try:
            revoked = auth.change_password(
                principal,
                form.get("current_password", ""),
                form.get("new_password", ""),
                ip=self.router.session.client_ip or None,
            )
        except DomainError as exc:
            self.password_errors = {exc.field or "form": exc.message}
            return None
        self._fill(principal.username, principal.jti)
        return rx.toast.success(f"Password changed; {revoked} other session(s) signed out")

    @rx.event
    def revoke(self, session_id: str) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        principal = self.principal()
        if principal is None:
            return AuthState.require_login
        try:
            auth.revoke_session(principal.username, session_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        if session_id == principal.jti:
            return AuthState.logout
        self._fill(principal.username, principal.jti)
        return rx.toast.success("Session signed out")
