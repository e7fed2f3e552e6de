"""The admin console's states: the role is checked on the server for every event (a customer's tab gets
nothing and changes nothing), and an admin's actions go through the admin services with their reasons."""

from __future__ import annotations

import asyncio
import base64
import inspect
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import reflex as rx
from sqlmodel import func, select

from cnop_app import formatting, scheduler
from cnop_app.db import read_session
from cnop_app.domain.enums import Role
from cnop_app.domain.errors import AuthenticationFailed, BusinessRuleViolation
from cnop_app.domain.timeutil import utcnow
from cnop_app.models import AuditEvent
from cnop_app.services import admin, auth, trading
from cnop_app.services.market import RefreshResult
from cnop_app.state import admin_overview
from cnop_app.state.admin_assets import AdminAssetsState
from cnop_app.state.admin_audit import AdminAuditState
from cnop_app.state.admin_base import ADMINS_ONLY
from cnop_app.state.admin_orders import AdminOrdersState
from cnop_app.state.admin_overview import AdminOverviewState
from cnop_app.state.admin_users import AdminUsersState, AdminUserState
from cnop_app.state.auth import AuthState
from tests.support.helpers import STRONG_PASSWORD, user_payload
from tests.support.trading_fixtures import account_of
from tests.ui.helpers import app_tree, listed_asset, redirect_target, sign_up, substate, toasts

ADMIN_STATES: dict[type[AuthState], str] = {
    AdminOverviewState: "/admin",
    AdminUsersState: "/admin/users",
    AdminUserState: "/admin/users/cust_01",
    AdminAssetsState: "/admin/assets",
    AdminOrdersState: "/admin/orders",
    AdminAuditState: "/admin/audit",
}
FORM = {
    "reason": "testing",
    "amount": "100",
    "role": "admin",
    "user": "cust_01",
    "asset": "AAA",
    "event_type": "admin_cash_adjusted",
}


def _admin(username: str = "boss_01") -> str:
    auth.register(user_payload(username), role=Role.ADMIN)
    return auth.login(username, STRONG_PASSWORD, user_agent="pytest-browser").access_token


def _customer_with_orders(username: str = "cust_01") -> tuple[str, str]:
    """A funded customer holding AAA with a resting limit buy; returns (token, the limit order's id)."""
    listed_asset("AAA", "10")
    token = sign_up(username, cash="1000")
    trading.place_order(username, {"order_type": "market_buy", "asset_id": "AAA", "quantity": "2"})
    order = trading.place_order(username, {"order_type": "limit_buy", "asset_id": "AAA", "quantity": "1", "price": "5"})
    return token, order.order_id


def _admin_tab(cls: type[AuthState], path: str, token: str) -> tuple[rx.State, Any]:
    root = app_tree(path, token)
    return root, substate(root, cls)


class _Proxy:
    """What a background event gets instead of the state: `async with` it to read or write."""

    def __init__(self, state: AuthState) -> None:
        object.__setattr__(self, "_state", state)

    async def __aenter__(self) -> _Proxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._state, name, value)


def _argument(annotation: Any) -> Any:
    text = str(annotation)
    if "dict" in text:
        return dict(FORM)
    if "bool" in text:
        return False
    return "AAA"


def _call(state: AuthState, name: str) -> Any:
    """Call an event handler as the browser would, with plausible arguments."""
    handler = type(state).event_handlers[name]
    params = list(inspect.signature(handler.fn).parameters.values())[1:]
    args = [_argument(p.annotation) for p in params]
    if getattr(handler.fn, "_reflex_background_task", False) or name == "poll":
        return asyncio.run(handler.fn(_Proxy(state), *args))
    result = handler.fn(state, *args)
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def _own_values(state: AuthState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in type(state).base_vars}


def _audit_count() -> int:
    with read_session() as session:
        return int(session.exec(select(func.count()).select_from(AuditEvent)).one())


def _handlers(cls: type[AuthState]) -> list[str]:
    return sorted(name for name in cls.event_handlers if name != "setvar")


def test_every_admin_handler_checks_the_admin_role() -> None:
    for cls in ADMIN_STATES:
        names = _handlers(cls)
        assert "load" in names
        for name in names:
            assert getattr(cls.event_handlers[name].fn, "admin_required", False), f"{cls.__name__}.{name}"


def test_a_customer_calling_every_admin_handler_changes_nothing_and_gets_no_data(
    ui_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, _ = _customer_with_orders()
    called: list[str] = []
    for name in admin.__all__:
        if name[0].islower():
            monkeypatch.setattr(admin, name, lambda *a, _n=name, **k: called.append(_n))
    before = _audit_count()
    for cls, path in ADMIN_STATES.items():
        for name in _handlers(cls):
            root, state = _admin_tab(cls, path, token)
            fresh = _own_values(state)
            result = _call(state, name)
            assert redirect_target(result) == "/dashboard", (cls.__name__, name)
            assert toasts(result) == [("error", ADMINS_ONLY)], (cls.__name__, name)
            assert _own_values(state) == fresh, (cls.__name__, name)
            assert substate(root, AuthState).username == "cust_01"  # still signed in, as a customer
    assert called == []
    assert _audit_count() == before
    assert auth.authenticate(token).username == "cust_01"


def test_a_stranger_is_sent_to_the_login_page(ui_env: Path) -> None:
    for cls, path in ADMIN_STATES.items():
        _, state = _admin_tab(cls, path, "")
        assert _call(state, "load") is AuthState.require_login
        assert redirect_target(state.require_login()) == f"/login?next={path}"


def test_a_demoted_admin_loses_the_page_and_its_data_at_the_next_event(ui_env: Path) -> None:
    _customer_with_orders()
    token = _admin("boss_01")
    _admin("boss_02")
    _, state = _admin_tab(AdminUserState, "/admin/users/cust_01", token)
    state.load()
    assert state.profile["username"] == "cust_01" and state.holdings
    admin.change_role(_ctx("boss_02"), "boss_01", "customer", "rotation")
    result = state.ledger_next()
    assert redirect_target(result) == "/dashboard"
    assert state.profile == {} and state.holdings == [] and state.ledger == []


def _ctx(username: str) -> admin.AdminContext:
    principal = auth.Principal(username=username, role=Role.ADMIN, jti="t", expires_at=utcnow() + timedelta(hours=1))
    return admin.AdminContext(principal, ip="192.0.2.9")


# ---- an admin's actions


def test_the_overview_poll_signs_out_a_tab_whose_session_ended(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = _admin()
    _, state = _admin_tab(AdminOverviewState, "/admin", token)
    assert state.load() is AdminOverviewState.poll and state.live
    monkeypatch.setattr(admin_overview, "POLL_SECONDS", 0)
    monkeypatch.setattr(admin_overview, "POLL_TICKS", 3)
    overview = admin_overview._overview

    def overview_then_logout(ctx: admin.AdminContext) -> Any:
        """The first tick's figures; then the session ends elsewhere (another tab, the API)."""
        auth.logout(auth.authenticate(token))
        return overview(ctx)

    monkeypatch.setattr(admin_overview, "_overview", overview_then_logout)

    events = _call(state, "poll")
    # The same notice and way back as a push gives any other signed-out tab.
    assert toasts(events) == [("warning", "Your session ended; please log in again")]
    assert redirect_target(events) == "/login?next=/admin"
    assert not state.live and state.figures == {}


def test_user_actions_need_a_reason_and_are_audited(ui_env: Path) -> None:
    customer_token, _ = _customer_with_orders()
    token = _admin()
    _, state = _admin_tab(AdminUserState, "/admin/users/cust_01", token)
    state.load()
    cash = account_of("cust_01").cash
    assert state.found and state.profile["cash"] == formatting.usd(cash)
    assert state.profile["held"] == formatting.usd(account_of("cust_01").held)
    assert len(state.open_orders) == 1 and len(state.sessions) == 1 and state.ledger

    state.ask("adjust")
    assert state.pending == "adjust"
    assert state.confirm({"amount": "25.50", "reason": "  "}) is None
    assert state.action_error == "reason is required" and state.pending == "adjust"
    assert state.confirm({"amount": str(-cash), "reason": "too much"}) is None
    assert state.pending == "adjust" and "nsufficient" in state.action_error
    result = state.confirm({"amount": "25.50", "reason": "contest prize"})
    assert toasts(result)[0][0] == "success" and state.pending == ""
    assert account_of("cust_01").cash == cash + Decimal("25.50")
    assert state.profile["cash"] == formatting.usd(cash + Decimal("25.50"))

    state.ask("disable")
    result = state.confirm({"reason": "abuse report"})
    assert toasts(result)[0][0] == "success"
    assert state.profile["active"] == "" and state.sessions == []
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(customer_token)
    state.ask("enable")
    state.confirm({"reason": "resolved"})
    assert state.profile["active"] == "yes"

    state.ask("role")
    state.confirm({"role": "admin", "reason": "new teacher"})
    assert state.profile["role"] == "admin"
    state.ask("throttle")
    assert toasts(state.confirm({"reason": "locked out"}))[0][0] == "success"
    state.ask("sign_out")
    assert toasts(state.confirm({"reason": "lost laptop"}))[0][0] == "success"

    events = {a["event_type"]: a for a in state.audit}
    for kind in (
        "admin_cash_adjusted",
        "admin_user_disabled",
        "admin_user_enabled",
        "admin_role_changed",
        "admin_throttle_cleared",
        "admin_signed_out",
    ):
        assert events[kind]["actor"] == "boss_01", kind
    assert events["admin_cash_adjusted"]["reason"] == "contest prize"
    assert state.ask("drop_tables") is None and state.pending == ""


def test_the_last_admin_cannot_disable_themselves(ui_env: Path) -> None:
    token = _admin()
    _, state = _admin_tab(AdminUserState, "/admin/users/boss_01", token)
    state.load()
    state.ask("disable")
    assert state.confirm({"reason": "oops"}) is None
    assert state.action_error == BusinessRuleViolation("The last active admin cannot be demoted or disabled").message
    assert auth.authenticate(token).username == "boss_01"


def test_an_unknown_user_shows_not_found(ui_env: Path) -> None:
    _, state = _admin_tab(AdminUserState, "/admin/users/nobody_99", _admin())
    state.load()
    assert not state.found and state.profile == {}
    state.ask("disable")
    assert state.pending == ""


def test_user_search_sort_and_pages(ui_env: Path) -> None:
    token = _admin()
    for i in range(26):
        auth.register(user_payload(f"pupil_{i:02d}"))
    _, state = _admin_tab(AdminUsersState, "/admin/users", token)
    state.load()
    assert state.total == 27 and len(state.rows) == 25 and state.page_count == 2 and state.has_next
    state.next_page()
    assert state.page == 1 and len(state.rows) == 2
    state.set_query("PUPIL_0")
    assert state.page == 0 and state.total == 10
    state.sort_by("username")
    assert state.sort_desc and state.rows[0]["username"] == "pupil_09"
    state.sort_by("no_such_column")
    assert state.rows[0]["username"] == "pupil_09"


def test_assets_toggle_with_a_reason_and_refresh_now(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _customer_with_orders()
    _, state = _admin_tab(AdminAssetsState, "/admin/assets", _admin())
    state.load()
    row = next(r for r in state.rows if r["id"] == "AAA")
    assert row["active"] == "yes" and row["open_orders"] == "1"
    state.ask_toggle("AAA")
    assert state.pending == "toggle" and not state.pending_enable
    assert asyncio.run(state.confirm({"reason": ""})) is None and state.action_error
    result = asyncio.run(state.confirm({"reason": "delisting review"}))
    assert toasts(result) == [("success", "Trading in AAA is off")]
    assert next(r for r in state.rows if r["id"] == "AAA")["active"] == ""
    with pytest.raises(BusinessRuleViolation, match="not available for trading"):
        trading.place_order("cust_01", {"order_type": "market_buy", "asset_id": "AAA", "quantity": "1"})
    state.set_inactive_only(True)
    assert [r["id"] for r in state.rows] == ["AAA"]

    calls: list[str] = []

    def fake_refresh() -> RefreshResult:
        calls.append("refresh")
        return RefreshResult(outcome="busy", source="snapshot")

    monkeypatch.setattr(scheduler, "run_refresh_once", fake_refresh)
    state.ask_refresh()
    result = asyncio.run(state.confirm({"reason": "feed looked stuck"}))
    assert calls == ["refresh"] and toasts(result)[0][0] == "warning"
    with read_session() as session:
        kinds = set(session.exec(select(AuditEvent.event_type)).all())
    assert {"admin_asset_disabled", "admin_prices_refreshed"} <= kinds


def test_orders_filter_and_cancel_on_the_users_behalf(ui_env: Path) -> None:
    _, order_id = _customer_with_orders()
    _, state = _admin_tab(AdminOrdersState, "/admin/orders?user=cust_01", _admin())
    state.load()
    assert state.f_user == "cust_01" and state.total == 2
    state.apply_filters({"status": "pending", "type": "all", "user": "", "asset": "aaa"})
    assert state.f_asset == "AAA" and [r["id"] for r in state.rows] == [order_id]
    state.apply_filters({"since": "not-a-date"})
    assert state.error and state.rows == []
    state.clear_filters()
    assert state.total == 2 and state.error == ""
    state.ask_cancel(order_id)
    assert state.pending == "cancel" and "cust_01" in state.pending_summary
    result = state.confirm({"reason": "user asked by email"})
    assert toasts(result)[0][0] == "success"
    assert account_of("cust_01").held == 0
    assert next(r for r in state.rows if r["id"] == order_id)["status"] == "cancelled"


def test_audit_filters_pages_and_csv(ui_env: Path) -> None:
    _customer_with_orders()
    token = _admin()
    admin.adjust_cash(_ctx("boss_01"), "cust_01", "10", '=HYPERLINK("x")')
    _, state = _admin_tab(AdminAuditState, "/admin/audit?user=cust_01", token)
    state.load()
    assert state.f_user == "cust_01" and "admin_cash_adjusted" in state.event_types
    state.apply_filters({"event_type": "admin_cash_adjusted", "user": "", "actor": "boss_01"})
    assert state.total == 1 and state.rows[0]["target"] == "cust_01"
    args = {str(key): value._var_value for key, value in state.export_csv().args}
    assert args["filename"] == "cnop-audit.csv"
    text = base64.b64decode(args["url"].split(",", 1)[1]).decode()
    header, row = text.splitlines()
    assert header.startswith("id,at,event_type") and "admin_cash_adjusted" in row
    assert "'=HYPERLINK" in row  # a spreadsheet would run it as a formula
    state.apply_filters({"until": "yesterday"})
    assert state.error and state.rows == []


def test_overview_loads_checks_integrity_and_stays_live_for_admins_only(
    ui_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_token, _ = _customer_with_orders()
    token = _admin()
    _, state = _admin_tab(AdminOverviewState, "/admin", token)
    result = state.load()
    assert result is AdminOverviewState.poll
    assert state.figures["users_total"] == "2" and state.figures["open_limit_orders"] == "1"
    assert state.integrity["ok"] == "yes" and state.live
    assert toasts(state.run_integrity_check())[0][0] == "success"

    sign_up("late_01")
    assert state._on_prices(auth.authenticate(token)) is None
    assert state.figures["users_total"] == "3"

    # The poll: refreshed figures while the tab shows /admin, stopping when it leaves.
    monkeypatch.setattr(admin_overview, "POLL_SECONDS", 0)
    monkeypatch.setattr(admin_overview, "POLL_TICKS", 2)
    sign_up("late_02")
    assert _call(state, "poll") is None
    assert state.figures["users_total"] == "4"

    # A push to a tab whose admin was demoted: no figures, away to the dashboard.
    principal = auth.authenticate(customer_token)
    assert redirect_target(state._on_prices(principal)) == "/dashboard"
    assert state.figures == {} and not state.live
