"""The admin console's guard and what every admin page state shares.

`admin_required` is the role check of every admin event: the session is verified (as `signed_in` does)
and the role read from the database on EVERY event, so a demoted or disabled admin loses the console at
their next click or push. Customers are sent to the dashboard with a notice and get no data; strangers
go to the login page. The admin services check the role once more (`AdminContext`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import reflex as rx

from cnop_app.services import admin
from cnop_app.services.auth import Principal
from cnop_app.state.auth import AuthState

ADMINS_ONLY = "The admin console is for admins only"
CUSTOMER_HOME = "/dashboard"
ADMIN_PAGE_SIZE = 25

S = TypeVar("S", bound=AuthState)
P = ParamSpec("P")
R = TypeVar("R")


def admin_check(state: AuthState) -> tuple[Principal | None, Any]:
    """The verified admin behind this tab's session, or (None, the events that send the browser away).

    A refused tab's admin data is forgotten: a demoted admin's open page keeps nothing it loaded."""
    principal = state._principal()
    if principal is not None and principal.is_admin:
        return principal, None
    state.reset()  # this admin state's own vars only; the tab stays signed in as a customer
    if principal is None:
        return None, AuthState.require_login
    return None, [rx.toast.error(ADMINS_ONLY), rx.redirect(CUSTOMER_HOME)]


def _mark(guarded: Callable[..., Any], handler: Callable[..., Any]) -> None:
    # `signed_in` too: the session-security inventory test lists every handler without a guard.
    guarded.signed_in = True  # type: ignore[attr-defined]
    guarded.admin_required = True  # type: ignore[attr-defined]
    signature = inspect.signature(handler)
    state_param, principal_param, *event_params = signature.parameters.values()
    guarded.__signature__ = signature.replace(parameters=[state_param, *event_params])  # type: ignore[attr-defined]
    guarded.__annotations__ = {k: v for k, v in handler.__annotations__.items() if k != principal_param.name}


def admin_required(
    handler: Callable[Concatenate[S, Principal, P], R],
) -> Callable[Concatenate[S, P], Any]:
    """THE admin guard: put it under `@rx.event`. The handler's second parameter receives the verified
    admin principal; the browser sees the remaining ones. Without an admin session it does not run."""

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def guarded_async(self: S, *args: P.args, **kwargs: P.kwargs) -> Any:
            principal, refusal = admin_check(self)
            if principal is None:
                return refusal
            return await handler(self, principal, *args, **kwargs)  # type: ignore[misc]

        _mark(guarded_async, handler)
        return guarded_async

    @functools.wraps(handler)
    def guarded_sync(self: S, *args: P.args, **kwargs: P.kwargs) -> Any:
        principal, refusal = admin_check(self)
        if principal is None:
            return refusal
        return handler(self, principal, *args, **kwargs)

    _mark(guarded_sync, handler)
    return guarded_sync


def admin_background(
    handler: Callable[Concatenate[S, Principal, P], Any],
) -> Callable[Concatenate[S, P], Any]:
    """`admin_required` for a background event (`@rx.event(background=True)` above it): the check runs
    under the state lock. The handler must check again whenever it works later (a long poll)."""

    @functools.wraps(handler)
    async def guarded(self: S, *args: P.args, **kwargs: P.kwargs) -> Any:
        async with self:
            principal, refusal = admin_check(self)
        if principal is None:
            return refusal
        return await handler(self, principal, *args, **kwargs)

    _mark(guarded, handler)
    return guarded


class AdminMixin(rx.State, mixin=True):
    """Mixed into every admin page state (with `AuthState`): the acting admin's context, and one
    action waiting for its confirmation (`pending`: which one; the dialog shows while it is set)."""

    error: str = ""
    pending: str = ""
    pending_target: str = ""
    action_error: str = ""

    def _ctx(self, principal: Principal) -> admin.AdminContext:
        return admin.AdminContext(principal, ip=self._client_ip(), request_id=None)  # type: ignore[attr-defined]

    def _close_action(self) -> None:
        self.pending = ""
        self.pending_target = ""
        self.action_error = ""

    @rx.event
    @admin_required
    def cancel_action(self, principal: Principal) -> None:
        self._close_action()

    @rx.event
    @admin_required
    def dialog_open_change(self, principal: Principal, is_open: bool) -> None:
        """Escape or a click outside closes the confirmation like Cancel."""
        if not is_open:
            self._close_action()


class AdminPagerMixin(rx.State, mixin=True):
    """Numbered pages of ADMIN_PAGE_SIZE rows; the state fills `total` in `_load_page`."""

    page: int = 0
    total: int = 0

    @rx.var
    def page_count(self) -> int:
        return max(1, (self.total + ADMIN_PAGE_SIZE - 1) // ADMIN_PAGE_SIZE)

    @rx.var
    def has_prev(self) -> bool:
        return self.page > 0

    @rx.var
    def has_next(self) -> bool:
        return (self.page + 1) * ADMIN_PAGE_SIZE < self.total

    def _offset(self) -> int:
        return self.page * ADMIN_PAGE_SIZE

    def _load_page(self, principal: Principal) -> None:
        raise NotImplementedError

    @rx.event
    @admin_required
    def next_page(self, principal: Principal) -> None:
        if (self.page + 1) * ADMIN_PAGE_SIZE < self.total:
            self.page += 1
            self._load_page(principal)

    @rx.event
    @admin_required
    def prev_page(self, principal: Principal) -> None:
        if self.page > 0:
            self.page -= 1
            self._load_page(principal)


def text_of(form: dict, key: str, limit: int = 100) -> str:
    """A form field as trimmed text ("" when missing or not text), cut to `limit` characters."""
    value = form.get(key, "")
    return value.strip()[:limit] if isinstance(value, str) else ""
