"""Session state: the JWT cookie, login, registration, logout, and the login guard of every page."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar
from urllib.parse import quote, unquote

import reflex as rx

from cnop_app.db import UnitOfWork
from cnop_app.domain.enums import Role
from cnop_app.domain.errors import DomainError, RateLimited
from cnop_app.services import auth
from cnop_app.state.rows import AuthFormErrors, one_error, shows

TOKEN_COOKIE = "cnop_token"
SAFE_NEXT_PREFIXES = ("/dashboard", "/account", "/profile", "/trade", "/portfolio", "/orders", "/market", "/admin")
FORM_CHECKED = ("on", True, "true")


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
    form_errors: AuthFormErrors = {}

    @rx.var
    def is_authenticated(self) -> bool:
        return self.username != ""

    @rx.var
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    # Methods named with a leading underscore are not events: Reflex lets the browser call every other one.

    def _principal(self) -> auth.Principal | None:
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

    def _identify(self) -> None:
        """Public pages: show who is signed in, if anyone (no redirect)."""
        if self.token:
            self._principal()

    def _client_ip(self) -> str | None:
        return self.router.session.client_ip or None

    def _signed_in(self, issued: auth.IssuedToken) -> None:
        self.token = issued.access_token
        self.username = issued.username
        self.role = issued.role

    @rx.event
    def require_login(self) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        """on_load for protected pages: back to /login?next=<this page> when not signed in."""
        had_token = bool(self.token)
        if self._principal() is not None:
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
        if self.token and self._principal() is not None:
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
            # A missing username or password goes under its input; a refusal on top of the form.
            if exc.status_code == 422 and shows(AuthFormErrors, exc.field):
                self.form_errors = one_error(AuthFormErrors, exc.field, exc.message)
            else:
                self.auth_error = exc.message
            return None
        self._signed_in(issued)
        return rx.redirect(_safe_next(self.router.url.query_parameters.get("next", "")))

    @rx.event
    def register(self, form: dict) -> list[rx.event.EventSpec] | None:
        self.auth_error = ""
        self.form_errors = {}
        if form.get("password", "") != form.get("confirm_password", ""):
            self.form_errors = {"confirm_password": "Passwords do not match"}
            return None
        data = {k: v for k, v in form.items() if k != "confirm_password"}
        data["marketing_emails_consent"] = form.get("marketing_emails_consent") in FORM_CHECKED
        for optional in ("phone", "date_of_birth"):
            if not data.get(optional):
                data.pop(optional, None)
        try:
            # One transaction: the account exists only if its first session does too.
            with UnitOfWork() as uow:
                auth.register(data, ip=self._client_ip(), uow=uow)
                issued = auth.login(
                    data.get("username", ""),
                    data.get("password", ""),
                    user_agent=self.router.headers.user_agent,
                    ip=self._client_ip(),
                    uow=uow,
                )
                uow.commit()
        except DomainError as exc:
            # A registration refusal names its field whatever its status (409 for a taken username).
            if shows(AuthFormErrors, exc.field):
                self.form_errors = one_error(AuthFormErrors, exc.field, exc.message)
            else:
                self.auth_error = exc.message
            return None
        self._signed_in(issued)
        return [rx.toast.success("Welcome to CNOP! Fund your account to start trading."), rx.redirect("/account")]

    @rx.event
    def logout(self) -> rx.event.EventSpec:
        principal = self._principal()
        if principal is not None:
            try:
                auth.logout(principal, ip=self._client_ip())
            except DomainError:
                pass  # already revoked: the outcome the user wants
        self.token = ""
        self.username = ""
        self.role = ""
        return rx.redirect("/login")


S = TypeVar("S", bound=AuthState)
P = ParamSpec("P")
R = TypeVar("R")


def signed_in(
    handler: Callable[Concatenate[S, auth.Principal, P], R],
) -> Callable[Concatenate[S, P], R | rx.event.EventHandler]:
    """THE login guard: the handler runs with the verified principal of the cookie's token; without
    one it does not run and the browser goes to /login?next=<this page> (`AuthState.require_login`).

    Put it under `@rx.event`. The handler's second parameter receives the principal; the browser
    sees the remaining ones (Reflex reads the signature and type hints without it)."""

    @functools.wraps(handler)
    def guarded(self: S, *args: P.args, **kwargs: P.kwargs) -> R | rx.event.EventHandler:
        principal = self._principal()
        if principal is None:
            return AuthState.require_login
        return handler(self, principal, *args, **kwargs)

    signature = inspect.signature(handler)
    state_param, principal_param, *event_params = signature.parameters.values()
    guarded.__signature__ = signature.replace(parameters=[state_param, *event_params])  # type: ignore[attr-defined]
    guarded.__annotations__ = {k: v for k, v in handler.__annotations__.items() if k != principal_param.name}
    return guarded
