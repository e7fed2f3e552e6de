"""Sessions in the UI: live pushes re-verify the session, the token stays out of every state delta, every
public handler that returns user data is behind the login guard, and `next` never leaves the site."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import jwt
import pytest
import reflex as rx
from reflex_base.utils.format import json_dumps
from sqlmodel import select

from cnop_app.db import write_session
from cnop_app.domain.errors import AuthenticationFailed
from cnop_app.models import User
from cnop_app.services import auth, trading
from cnop_app.state import auth as auth_state_module
from cnop_app.state.account import AccountState
from cnop_app.state.admin_assets import AdminAssetsState
from cnop_app.state.admin_audit import AdminAuditState
from cnop_app.state.admin_orders import AdminOrdersState
from cnop_app.state.admin_overview import AdminOverviewState
from cnop_app.state.admin_users import AdminUsersState, AdminUserState
from cnop_app.state.auth import AuthState, _safe_next
from cnop_app.state.dashboard import DashboardState
from cnop_app.state.live import refresh_client
from cnop_app.state.live_pages import LIVE_STATES
from cnop_app.state.market import AssetState, LandingState, MarketState
from cnop_app.state.orders import OrdersState
from cnop_app.state.portfolio import PortfolioState
from cnop_app.state.profile import ProfileState
from cnop_app.state.trade import TradeState
from tests.support.helpers import STRONG_PASSWORD
from tests.ui.helpers import (
    app_tree,
    listed_asset,
    redirect_target,
    router,
    session_token,
    sign_up,
    substate,
    tab,
    toasts,
)

# Every admin page's state: each handler carries the admin guard (tests/ui/test_admin_states.py).
ADMIN_STATES = {
    AdminOverviewState,
    AdminUsersState,
    AdminUserState,
    AdminAssetsState,
    AdminOrdersState,
    AdminAuditState,
}


def _live(root: rx.State) -> list[AuthState]:
    return [substate(root, cls) for cls in LIVE_STATES]


def _signed_in_tab(username: str, path: str = "/orders") -> tuple[str, rx.State]:
    """A funded user with one filled and one resting order, every live page of the tab loaded."""
    listed_asset("AAA", "10")
    token = sign_up(username, cash="1000")
    trading.place_order(username, {"order_type": "market_buy", "asset_id": "AAA", "quantity": "2"})
    trading.place_order(username, {"order_type": "limit_buy", "asset_id": "AAA", "quantity": "1", "price": "5"})
    root = app_tree(path, token)
    for cls in (OrdersState, PortfolioState, DashboardState, TradeState):
        assert substate(root, cls).load() is None
    return token, root


# ---- A1: live pushes re-verify the session


def test_a_push_after_logout_signs_the_tab_out_and_sends_no_user_data(ui_env: Path) -> None:
    token, root = _signed_in_tab("push_logout")
    orders, portfolio = substate(root, OrdersState), substate(root, PortfolioState)
    assert len(orders.orders) == 2 and portfolio.holdings and portfolio.totals

    auth.logout(auth.authenticate(token))  # another tab, or POST /auth/logout
    trading.place_order("push_logout", {"order_type": "market_buy", "asset_id": "AAA", "quantity": "1"})
    events = refresh_client(_live(root))

    assert toasts(events) == [("warning", "Your session ended; please log in again")]
    assert redirect_target(events) == "/login?next=/orders"
    # No user data assigned by the push, and what the tab had loaded is forgotten.
    assert orders.orders == [] and not orders.live
    assert portfolio.holdings == [] and portfolio.totals == {} and not portfolio.live
    assert substate(root, DashboardState).recent == [] and substate(root, TradeState).open_orders == []
    auth_root = substate(root, AuthState)
    assert auth_root.username == "" and not auth_root.is_authenticated
    # Signed out: the next push neither signs out again nor looks the session up.
    assert refresh_client(_live(root)) == []


@pytest.mark.parametrize("end", ["revoked", "expired", "disabled"])
def test_every_way_a_session_ends_signs_the_tab_out(ui_env: Path, monkeypatch: pytest.MonkeyPatch, end: str) -> None:
    token, root = _signed_in_tab(f"push_{end}")
    principal = auth.authenticate(token)
    if end == "revoked":
        auth.revoke_session(principal.username, principal.jti)
    elif end == "expired":
        real = auth.authenticate

        def expired(tok: object) -> auth.Principal:
            real(tok)
            raise AuthenticationFailed("Token has expired")

        monkeypatch.setattr(auth, "authenticate", expired)
    else:
        with write_session() as session:
            user = session.exec(select(User).where(User.username == principal.username)).one()
            user.is_active = False
            session.add(user)
    events = refresh_client(_live(root))
    assert toasts(events) == [("warning", "Your session ended; please log in again")]
    assert substate(root, OrdersState).orders == []


def test_a_push_verifies_the_session_once_per_client_and_skips_strangers(
    ui_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, root = _signed_in_tab("push_once")
    calls: list[object] = []
    real = auth.authenticate

    def counting(tok: object) -> auth.Principal:
        calls.append(tok)
        return real(tok)

    monkeypatch.setattr(auth, "authenticate", counting)
    trading.place_order("push_once", {"order_type": "market_buy", "asset_id": "AAA", "quantity": "1"})
    assert refresh_client(_live(root)) == []
    assert calls == [token]  # one joined session+user query for all the live states
    assert len(substate(root, OrdersState).orders) == 3  # a live session still gets its data

    calls.clear()
    stranger = app_tree("/market")
    market = substate(stranger, MarketState)
    market.load()
    assert refresh_client(_live(stranger)) == []
    assert calls == []


def test_a_tab_cannot_make_the_push_load_another_users_data(ui_env: Path) -> None:
    """The push uses the verified session, never the username the state remembers."""
    _, root = _signed_in_tab("attacker_1")
    sign_up("victim_01", cash="1000")
    trading.place_order("victim_01", {"order_type": "market_buy", "asset_id": "AAA", "quantity": "3"})
    orders = substate(root, OrdersState)
    orders.username = "victim_01"  # whatever the state holds is display only
    refresh_client(_live(root))
    assert {o["quantity"] for o in orders.orders} == {"2", "1"}
    assert orders.username == "attacker_1"


def test_push_handlers_are_not_events(ui_env: Path) -> None:
    for cls in LIVE_STATES:
        assert not any("prices" in name for name in cls.event_handlers), cls


# ---- every public handler that returns user data is behind the login guard

# Reviewed handlers without `signed_in`: none returns user data without verifying the session itself.
UNGUARDED = {
    AuthState: {"require_login", "redirect_if_signed_in", "login", "register", "logout"},
    # Ticket typing verifies through `_principal()` before the preview shows cash or holdings.
    TradeState: {
        "set_asset",
        "set_side",
        "set_kind",
        "set_amount_mode",
        "set_quantity",
        "set_usd",
        "set_limit",
        "set_expiry",
        "cancel_review",
        "dismiss_notice",
    },
    AccountState: {"review", "cancel_review"},  # validate an amount; no account data
    MarketState: {"load", "load_status", "show_all_rows", "set_search", "sort_by"},  # market data only
    AssetState: {"load", "set_range"},
    LandingState: {"load"},
}


def _auth_states(cls: type[rx.State] = AuthState) -> list[type[rx.State]]:
    found = [cls]
    for sub in cls.get_substates():
        found.extend(_auth_states(sub))
    return found


def test_every_public_handler_is_guarded_or_reviewed() -> None:
    states = _auth_states()
    assert set(LIVE_STATES) | {AccountState, ProfileState} | ADMIN_STATES <= set(states)
    for cls in states:
        inherited = set().union(*(UNGUARDED.get(base, set()) for base in cls.__mro__ if isinstance(base, type)))
        for name, handler in cls.event_handlers.items():
            if name == "setvar":  # dispatches to the state's own set_* handlers, checked here too
                continue
            guarded = getattr(handler.fn, "signed_in", False)
            assert guarded or name in inherited, f"{cls.__name__}.{name} returns user data without the login guard?"


def test_ticket_typing_after_the_session_ended_shows_no_account(ui_env: Path) -> None:
    token, root = _signed_in_tab("ticket_end", "/trade")
    trade = substate(root, TradeState)
    assert "cash" in trade.preview
    auth.logout(auth.authenticate(token))
    trade.set_quantity("1")
    assert "cash" not in trade.preview and "holding" not in trade.preview
    assert trade.review() is AuthState.require_login


# ---- A6: the token is in no state delta


def _sent(root: rx.State) -> str:
    """Everything Reflex would send this tab: the full hydrate snapshot and the pending delta."""
    return json_dumps(root.dict()) + json_dumps(root.get_delta())


def test_login_and_hydrate_deltas_carry_no_token(ui_env: Path) -> None:
    sign_up("delta_user")
    root = app_tree("/login?next=/dashboard")
    auth_state = substate(root, AuthState)
    result = asyncio.run(auth_state.login({"username": "delta_user", "password": STRONG_PASSWORD}))
    token = session_token(auth_state)
    assert auth.authenticate(token).username == "delta_user"
    assert token not in _sent(root)
    assert not any(AuthState._is_client_storage(name) for name in AuthState.get_fields())

    # The page gets a claim for its HttpOnly cookie, not the token; the claim is no token either.
    script = json.dumps([str(spec) for spec in result])
    assert token not in script and "/api/v1/session" in script
    (claim,) = set(re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", script))
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(claim)
    assert jwt.decode(claim, options={"verify_signature": False})["aud"] == "cnop-session-cookie"

    # A later connection reads the cookie from its handshake; the hydrate of that tab does not echo it.
    later = app_tree("/dashboard", token)
    dashboard = substate(later, DashboardState)
    assert dashboard.load() is None and dashboard.username == "delta_user"
    assert token not in _sent(later)


def test_the_token_of_a_login_is_used_only_on_the_connection_that_made_it(ui_env: Path) -> None:
    sign_up("conn_user")
    state = tab(AuthState, "/login")
    asyncio.run(state.login({"username": "conn_user", "password": STRONG_PASSWORD}))
    assert state._principal() is not None
    # A new websocket (reload, reconnect) without the cookie is not signed in by the old connection's token.
    state.router = router("/dashboard", sid="socket-2")
    assert state._principal() is None


def test_logout_drops_the_cookie_and_forgets_the_tab(ui_env: Path) -> None:
    token, root = _signed_in_tab("logout_ui")
    result = substate(root, AuthState).logout()
    assert redirect_target(result) == "/login"
    assert "DELETE" in json.dumps([str(spec) for spec in result])
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(token)
    assert substate(root, OrdersState).orders == [] and substate(root, PortfolioState).holdings == []


# ---- A14: `next` never leaves the site

BAD_NEXT = [
    "",
    "https://evil.example.com/dashboard",
    "//evil.example.com",
    "/\\evil.example.com",
    "\\\\evil.example.com",
    "/dashboard/../../\\evil.com",
    "/dashboard/..//evil.com",
    "/%2F%2Fevil.example.com",
    "%2F%2Fevil.example.com",
    "/\t/evil.example.com",
    "/dashboard\n//evil.example.com",
    "javascript:alert(1)",
    "/dashboardevil",
    "/login",
    "/../etc/passwd",
    "dashboard",
    "http:/dashboard",
]
GOOD_NEXT = [
    ("/dashboard", "/dashboard"),
    ("/dashboard/", "/dashboard"),
    ("/dashboard//evil.com", "/dashboard/evil.com"),
    ("/orders", "/orders"),
    ("%2Forders", "/orders"),
    ("/market/BTC", "/market/BTC"),
    ("/trade?asset=ETH&side=sell", "/trade?asset=ETH&side=sell"),
    ("/account/../profile", "/profile"),
]


@pytest.mark.parametrize("target", BAD_NEXT)
def test_next_outside_the_site_goes_to_the_dashboard(target: str) -> None:
    assert _safe_next(target) == "/dashboard"


@pytest.mark.parametrize(("target", "expected"), GOOD_NEXT)
def test_next_inside_the_site_is_kept_normalised(target: str, expected: str) -> None:
    result = _safe_next(target)
    assert result == expected
    assert result.startswith("/") and not result.startswith("//") and "\\" not in result


def test_login_with_a_hostile_next_stays_on_the_site(ui_env: Path) -> None:
    sign_up("next_user")
    state = tab(AuthState, "/login?next=%2Fdashboard%2F..%2F..%2F%5Cevil.com")
    result = asyncio.run(state.login({"username": "next_user", "password": STRONG_PASSWORD}))
    assert redirect_target(result) == "/dashboard"
    assert auth_state_module.DEFAULT_NEXT == "/dashboard"
