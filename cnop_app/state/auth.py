"""Session state: who is signed in, login, registration, logout, and the login guard of every page.

The session token never reaches page scripts: the browser keeps it in an HttpOnly cookie
(`cnop_app.api.session_cookie`) that each websocket sends in its handshake, and a login in the current
connection keeps it in a backend-only var until the next connection. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import posixpath
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote, unquote, urlsplit

import reflex as rx

from cnop_app.api.session_cookie import (
    COOKIE_NAME,
    forget_cookie_script,
    issue_claim,
    store_cookie_script,
    token_from_cookie_header,
)
from cnop_app.config import get_settings
from cnop_app.db import UnitOfWork
from cnop_app.domain.enums import Role
from cnop_app.domain.errors import DomainError, RateLimited
from cnop_app.domain.network import client_ip
from cnop_app.services import auth
from cnop_app.services.ratelimit import RateLimiter
from cnop_app.state.rows import AuthFormErrors, one_error, shows

TOKEN_COOKIE = COOKIE_NAME
SAFE_NEXT_PREFIXES = ("/dashboard", "/account", "/profile", "/trade", "/portfolio", "/orders", "/market", "/admin")
DEFAULT_NEXT = "/dashboard"
FORM_CHECKED = ("on", True, "true")
SESSION_EXPIRED = "Your session has expired. Please log in again."
SESSION_ENDED = "Your session ended; please log in again"
# The REST API's route group of login, registration and password changes: the same limits here.
RATE_LIMIT_GROUP = "auth"
_limiter: tuple[object, RateLimiter | None] | None = None


def _event_limiter() -> RateLimiter | None:
    """The rate limiter of the login, registration and password events (None when limits are off)."""
    global _limiter
    settings = get_settings()
    if _limiter is None or _limiter[0] is not settings:
        _limiter = (settings, RateLimiter.from_settings(settings))
    return _limiter[1]


def _safe_next(target: str) -> str:
    r"""Only same-site paths we know: never redirect to another host after login.

    Browsers read `\` as `/` and drop tabs and newlines inside URLs, so `/x/../\evil.com` would leave the
    site: the path is normalised first, then must start with exactly one slash and a known page."""
    text = unquote(target or "").replace("\\", "/")
    if not text or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        return DEFAULT_NEXT
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return DEFAULT_NEXT
    path = posixpath.normpath(parts.path)
    if path.startswith("//") or not any(path == p or path.startswith(p + "/") for p in SAFE_NEXT_PREFIXES):
        return DEFAULT_NEXT
    return f"{path}?{parts.query}" if parts.query else path


def _register_and_login(data: dict[str, Any], *, user_agent: str | None, ip: str | None) -> auth.IssuedToken:
    # One transaction: the account exists only if its first session does too.
    with UnitOfWork() as uow:
        auth.register(data, ip=ip, uow=uow)
        issued = auth.login(data.get("username", ""), data.get("password", ""), user_agent=user_agent, ip=ip, uow=uow)
        uow.commit()
    return issued


class AuthState(rx.State):
    # Display only: set by the server from the verified token, never trusted for identity.
    username: str = ""
    role: str = ""
    auth_error: str = ""
    form_errors: AuthFormErrors = {}
    # The token of a login made over this tab's current websocket, which was opened before the cookie
    # existed (backend-only: never in a delta). Any other connection reads the cookie of its handshake.
    _token: str = ""
    _token_sid: str = ""
    # The live states this tab has followed (`_follow_prices`), by full name: a push opens only these.
    _followed: tuple[str, ...] = ()

    @rx.var
    def is_authenticated(self) -> bool:
        return self.username != ""

    @rx.var
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    # Methods named with a leading underscore are not events: Reflex lets the browser call every other one.

    def _session_token(self) -> str:
        if self._token:
            if self._token_sid == self.router.session.session_id:
                return self._token
            # A new connection: its handshake carries the cookie, the old connection's copy goes.
            self._token = ""
            self._token_sid = ""
        return token_from_cookie_header(self.router.headers.cookie)

    def _principal(self) -> auth.Principal | None:
        """The verified identity behind the session token, or None (and the display vars cleared).
        Verified on every call: signature, expiry, revocation, account still active."""
        token = self._session_token()
        try:
            principal = auth.authenticate(token) if token else None
        except DomainError:
            principal = None
        self.username = principal.username if principal else ""
        self.role = principal.role if principal else ""
        return principal

    def _follow_prices(self) -> None:
        """A live state's page loaded: the pushes update this state from now on (its `live` var). The tab
        records it, so a push opens only the live states the tab has followed, not all of them."""
        self.live = True  # type: ignore[attr-defined]  # declared by each live state
        name = type(self).get_full_name()
        if name not in self._followed:
            self._followed = (*self._followed, name)

    def _identify(self) -> None:
        """Public pages: show who is signed in, if anyone (no redirect)."""
        if self._session_token():
            self._principal()

    def _client_ip(self) -> str | None:
        """The client's address by the app's one rule (X-Forwarded-For only from CNOP_TRUSTED_PROXIES)."""
        headers = self.router.headers.raw_headers
        peer = headers.get("asgi-scope-client") or self.router.session.client_ip or None
        return client_ip(peer, headers.get("x-forwarded-for"), get_settings().trusted_networks)

    def _auth_root(self) -> AuthState:
        state: AuthState = self
        while isinstance(state.parent_state, AuthState):
            state = state.parent_state
        return state

    def _end_session(self) -> None:
        """Forget the user in this tab: the token and the data every page loaded for them (a later
        hydrate would send it to the browser again)."""
        root = self._auth_root()
        root.reset()
        for state in (root,) if root is self else (root, self):
            state.username = ""
            state.role = ""
            state._token = ""
            state._token_sid = ""

    def _signed_in(self, issued: auth.IssuedToken) -> rx.event.EventSpec:
        """Use the new session now, and have the browser store its HttpOnly cookie for later connections."""
        self._token = issued.access_token
        self._token_sid = self.router.session.session_id
        self.username = issued.username
        self.role = issued.role
        return rx.call_script(store_cookie_script(issue_claim(issued)))

    async def _rate_limited(self, user: str | None = None) -> str:
        """The refusal when this client IP (or `user`) is past the REST API's login/registration/password
        limits, else "". Spends one token, as a request to those routes does."""
        limiter = _event_limiter()
        if limiter is None:
            return ""
        decision = await limiter.hit(RATE_LIMIT_GROUP, user=user, ip=self._client_ip())
        if decision is None or decision.allowed:
            return ""
        return f"Too many attempts; try again in {decision.reset_seconds} s."

    def _live_principal(self) -> tuple[auth.Principal | None, list[rx.event.EventSpec]]:
        """For the live push, once per client: the verified principal, or None. Clients not signed in
        cost nothing; a session that ended (logout elsewhere, revoked, expired, account disabled) signs
        the tab out with a notice and sends it to the login page."""
        if not self.username:
            return None, []
        principal = self._principal()
        if principal is not None:
            return principal, []
        return None, self._session_ended()

    def _session_ended(self, default_next: str = DEFAULT_NEXT) -> list[rx.event.EventSpec]:
        """Sign this tab out of a session that ended elsewhere: a notice, then the login page, which
        leads back to the page it was on."""
        path = self.router.url.path or default_next
        self._end_session()
        return [rx.toast.warning(SESSION_ENDED), rx.redirect(f"/login?next={quote(path)}")]

    @rx.event
    def require_login(self) -> rx.event.EventSpec | list[rx.event.EventSpec] | None:
        """on_load for protected pages: back to /login?next=<this page> when not signed in."""
        had_token = bool(self._session_token())
        if self._principal() is not None:
            return None
        path = self.router.url.path or DEFAULT_NEXT
        if had_token:
            self._end_session()
            return [
                rx.toast.warning(SESSION_EXPIRED),
                rx.redirect(f"/login?next={quote(path)}"),
            ]
        return rx.redirect(f"/login?next={quote(path)}")

    @rx.event
    def redirect_if_signed_in(self) -> rx.event.EventSpec | None:
        """on_load for /login and /register: a signed-in visitor goes on to `next`, as after logging in.

        `next`, not the dashboard: the login form can be sent before this on_load has run (a quick
        user on a slow connection), and this then finds the visitor signed in by that login."""
        self.auth_error = ""
        self.form_errors = {}
        if self._session_token() and self._principal() is not None:
            return rx.redirect(_safe_next(self.router.url.query_parameters.get("next", "")))
        return None

    # Login, registration and password changes hash with argon2 (~40 ms of CPU): in a worker thread, so
    # the event loop keeps serving every other browser (`passwords.MAX_CONCURRENT_HASHES` bounds them).

    @rx.event
    async def login(self, form: dict) -> list[rx.event.EventSpec] | None:
        self.auth_error = ""
        self.form_errors = {}
        if refusal := await self._rate_limited():
            self.auth_error = refusal
            return None
        try:
            issued = await asyncio.to_thread(
                auth.login,
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
        store_cookie = self._signed_in(issued)
        return [store_cookie, rx.redirect(_safe_next(self.router.url.query_parameters.get("next", "")))]

    @rx.event
    async def register(self, form: dict) -> list[rx.event.EventSpec] | None:
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
        if refusal := await self._rate_limited():
            self.auth_error = refusal
            return None
        try:
            issued = await asyncio.to_thread(
                _register_and_login, data, user_agent=self.router.headers.user_agent, ip=self._client_ip()
            )
        except DomainError as exc:
            # A registration refusal names its field whatever its status (409 for a taken username).
            if shows(AuthFormErrors, exc.field):
                self.form_errors = one_error(AuthFormErrors, exc.field, exc.message)
            else:
                self.auth_error = exc.message
            return None
        store_cookie = self._signed_in(issued)
        return [
            store_cookie,
            rx.toast.success("Welcome to CNOP! Fund your account to start trading."),
            rx.redirect("/account"),
        ]

    @rx.event
    def logout(self) -> list[rx.event.EventSpec]:
        principal = self._principal()
        if principal is not None:
            try:
                auth.logout(principal, ip=self._client_ip())
            except DomainError:
                pass  # already revoked: the outcome the user wants
        self._end_session()
        return [rx.call_script(forget_cookie_script()), rx.redirect("/login")]


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

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def guarded_async(self: S, *args: P.args, **kwargs: P.kwargs) -> Any:
            principal = self._principal()
            if principal is None:
                return AuthState.require_login
            return await handler(self, principal, *args, **kwargs)  # type: ignore[misc]

        guarded: Callable[..., Any] = guarded_async
    else:

        @functools.wraps(handler)
        def guarded_sync(self: S, *args: P.args, **kwargs: P.kwargs) -> R | rx.event.EventHandler:
            principal = self._principal()
            if principal is None:
                return AuthState.require_login
            return handler(self, principal, *args, **kwargs)

        guarded = guarded_sync

    guarded.signed_in = True  # type: ignore[attr-defined]  # tests list every handler without the guard
    signature = inspect.signature(handler)
    state_param, principal_param, *event_params = signature.parameters.values()
    guarded.__signature__ = signature.replace(parameters=[state_param, *event_params])  # type: ignore[attr-defined]
    guarded.__annotations__ = {k: v for k, v in handler.__annotations__.items() if k != principal_param.name}
    return guarded
