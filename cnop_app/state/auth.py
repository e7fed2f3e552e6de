"""Session state: the JWT cookie, login, registration and logout."""

from __future__ import annotations

from urllib.parse import quote, unquote

import reflex as rx

from cnop_app.domain.errors import DomainError, RateLimited
from cnop_app.services import auth

TOKEN_COOKIE = "cnop_token"
SAFE_NEXT_PREFIXES = ("/dashboard", "/account", "/profile", "/trade", "/portfolio", "/orders", "/market", "/admin")


def _safe_next(target: str) -> str:
    """Only same-site paths we know: never redirect to another host after login."""
    target = unquote(target or "")
    if target.startswith(SAFE_NEXT_PREFIXES) and not target.startswith("//"):
        return target
    return "/dashboard"


class AuthState(rx.State):
    # The browser holds the token; every handler re-verifies it (signature, expiry, revocation).
    token: str = rx.Cookie("", name=TOKEN_COOKIE, path="/", same_site="strict", max_age=7 * 24 * 3600)
    # Display only: set by the server from the verified token, never trusted for identity.
    username: str = ""
    role: str = ""
    auth_error: str = ""
    form_errors: dict[str, str] = {}

    @rx.var
    def is_authenticated(self) -> bool:
        return self.username != ""

    @rx.var
    def is_admin(self) -> bool:
        return self.role == "admin"

    def principal(self) -> auth.Principal | None:
        """The verified identity behind the cookie, or None (and the display vars cleared)."""
        try:
            principal = auth.authenticate(self.token)
        except DomainError:
            self.username = ""
            self.role = ""
            return None
        self.username = principal.username
        self.role = principal.role
        return principal

    def _client_ip(self) -> str | None:
        return self.router.session.client_ip or None

    @rx.event
    def require_login(self) -> rx.event.EventSpec | None:
        """on_load for protected pages: back to /login?next=<this page> when not signed in."""
        had_token = bool(self.token)
        if self.principal() is not None:
            return None
        self.token = ""
        path = self.router.url.path or "/dashboard"
        if had_token:
            return [
                rx.toast.warning("Your session has expired. Please log in again."),
                rx.redirect(f"/login?next={quote(path)}"),
            ]
        return rx.redirect(f"/login?next={quote(path)}")

    @rx.event
    def redirect_if_signed_in(self) -> rx.event.EventSpec | None:
        """on_load for /login and /register."""
        self.auth_error = ""
        self.form_errors = {}
        if self.token and self.principal() is not None:
            return rx.redirect("/dashboard")
        return None

    @rx.event
    def login(self, form: dict) -> rx.event.EventSpec | None:
        self.auth_error = ""
        self.form_errors = {}
        try:
            issued = auth.login(
                form.get("username", ""),
                form.get("password", ""),
                user_agent=self.router.headers.user_agent,
                ip=self._client_ip(),
            )
        except RateLimited as exc:
            self.auth_error = f"{exc.message} (in {exc.retry_after} s)."
            return None
        except DomainError as exc:
            if exc.field and exc.status_code == 422:
                self.form_errors = {exc.field: exc.message}
            else:
                self.auth_error = exc.message
            return None
        self.token = issued.access_token
        self.username = issued.username
        self.role = issued.role
        return rx.redirect(_safe_next(self.router.url.query_parameters.get("next", "")))

    @rx.event
    def register(self, form: dict) -> rx.event.EventSpec | None:
        self.auth_error = ""
        self.form_errors = {}
        if form.get("password", "") != form.get("confirm_password", ""):
            self.form_errors = {"confirm_password": "Passwords do not match"}
            return None
        data = {k: v for k, v in form.items() if k != "confirm_password"}
        data["marketing_emails_consent"] = form.get("marketing_emails_consent") in ("on", True, "true")
        for optional in ("phone", "date_of_birth"):
            if not data.get(optional):
                data.pop(optional, None)
        try:
            auth.register(data, ip=self._client_ip())
            issued = auth.login(
                data.get("username", ""), data.get("password", ""), user_agent=self.router.headers.user_agent
            )
        except DomainError as exc:
            if exc.field:
                self.form_errors = {exc.field: exc.message}
            else:
                self.auth_error = exc.message
            return None
        self.token = issued.access_token
        self.username = issued.username
        self.role = issued.role
        return [rx.toast.success("Welcome to CNOP! Fund your account to start trading."), rx.redirect("/account")]

    @rx.event
    def logout(self) -> rx.event.EventSpec:
        principal = self.principal()
        if principal is not None:
            try:
                auth.logout(principal, ip=self._client_ip())
            except DomainError:
                pass  # already revoked: the outcome the user wants
        self.token = ""
        self.username = ""
        self.role = ""
        return rx.redirect("/login")
