"""The login guard of every protected handler, the auth forms, and registration in one transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cnop_app.domain.errors import AuthenticationFailed, NotFound
from cnop_app.services import auth
from cnop_app.state.account import AccountState
from cnop_app.state.auth import AuthState
from cnop_app.state.dashboard import DashboardState
from cnop_app.state.market import AssetState, MarketState
from cnop_app.state.orders import OrdersState
from cnop_app.state.portfolio import PortfolioState
from cnop_app.state.profile import ProfileState
from cnop_app.state.trade import TradeState
from tests.support.helpers import STRONG_PASSWORD, user_payload
from tests.ui.helpers import redirect_target, session_token, sign_up, tab, toasts

# (state, page, a guarded handler with its browser arguments)
GUARDED = [
    (TradeState, "/trade", "load", ()),
    (TradeState, "/trade", "review", ()),
    (TradeState, "/trade", "confirm", ()),
    (TradeState, "/trade", "cancel_order", ("some-order",)),
    (AccountState, "/account", "load", ()),
    (AccountState, "/account", "confirm", ()),
    (AccountState, "/account", "export_csv", ()),
    (AccountState, "/account", "next_page", ()),
    (AccountState, "/account", "review_reset", ({"starting_cash": "100"},)),
    (AccountState, "/account", "confirm_reset", ()),
    (MarketState, "/market", "toggle_star", ("BTC",)),
    (AssetState, "/market/BTC", "toggle_star", ()),
    (OrdersState, "/orders", "load", ()),
    (OrdersState, "/orders", "prev_page", ()),
    (OrdersState, "/orders", "set_status_filter", ("pending",)),
    (PortfolioState, "/portfolio", "load", ()),
    (PortfolioState, "/portfolio", "set_history_range", ("7d",)),
    (DashboardState, "/dashboard", "load", ()),
    (ProfileState, "/profile", "load", ()),
    (ProfileState, "/profile", "save_profile", ({"email": "x@example.com"},)),
    (ProfileState, "/profile", "revoke", ("some-session",)),
]


@pytest.mark.parametrize(("state_cls", "path", "handler", "args"), GUARDED)
def test_guarded_handlers_send_a_stranger_to_login(
    ui_env: Path, state_cls: type[AuthState], path: str, handler: str, args: tuple
) -> None:
    state = tab(state_cls, path)
    assert getattr(state, handler)(*args) is AuthState.require_login
    # The chained guard event sends the browser to the login page, back here afterwards.
    assert redirect_target(state.require_login()) == f"/login?next={path}"
    assert state.username == ""


def test_an_invalid_or_revoked_token_is_dropped_with_a_notice(ui_env: Path) -> None:
    state = tab(AccountState, "/account", token="not-a-jwt")
    assert state.load() is AuthState.require_login
    result = state.require_login()
    assert redirect_target(result) == "/login?next=/account"
    assert toasts(result) == [("warning", "Your session has expired. Please log in again.")]

    token = sign_up("revoked_01")
    principal = auth.authenticate(token)
    auth.logout(principal)
    state = tab(TradeState, "/trade", token=token)
    assert state.review() is AuthState.require_login


def test_a_valid_token_runs_the_handler_with_its_principal(ui_env: Path) -> None:
    token = sign_up("guard_ok")
    state = tab(ProfileState, "/profile", token=token)
    assert state.require_login() is None
    assert state.load() is None
    assert state.username == "guard_ok"
    assert state.email == "guard_ok@example.com"
    assert [s["current"] for s in state.sessions] == ["yes"]


def test_login_form_signs_in_and_returns_to_the_page_asked_for(ui_env: Path) -> None:
    sign_up("login_user")
    state = tab(AuthState, "/login?next=/orders")
    result = asyncio.run(state.login({"username": "login_user", "password": STRONG_PASSWORD}))
    assert redirect_target(result) == "/orders"
    assert state.username == "login_user" and auth.authenticate(session_token(state)).username == "login_user"

    state = tab(AuthState, "/login?next=//evil.example.com")
    result = asyncio.run(state.login({"username": "login_user", "password": STRONG_PASSWORD}))
    assert redirect_target(result) == "/dashboard"

    state = tab(AuthState, "/login")
    assert asyncio.run(state.login({"username": "login_user", "password": "wrong-Password-1"})) is None
    assert state.auth_error == "Invalid username or password" and session_token(state) == ""
    assert asyncio.run(state.login({"username": "", "password": "x"})) is None
    assert state.form_errors == {"username": "username is required"}


def test_the_login_page_sends_a_signed_in_visitor_on_to_next(ui_env: Path) -> None:
    # The login form can be handled before the page's on_load (a quick click on a slow connection):
    # the on_load then finds the tab signed in and must still go to `next`, not to the dashboard.
    state = tab(AuthState, "/login?next=/portfolio")
    assert state.redirect_if_signed_in() is None  # nobody signed in: the form stays
    token = sign_up("quick_user")
    state = tab(AuthState, "/login?next=/portfolio", token)
    assert redirect_target(state.redirect_if_signed_in()) == "/portfolio"
    assert redirect_target(tab(AuthState, "/login?next=//evil.example.com", token).redirect_if_signed_in()) == (
        "/dashboard"
    )
    assert redirect_target(tab(AuthState, "/register", token).redirect_if_signed_in()) == "/dashboard"


def test_register_signs_in_and_opens_the_account_page(ui_env: Path) -> None:
    form = {**user_payload("fresh_user"), "confirm_password": STRONG_PASSWORD, "marketing_emails_consent": "on"}
    state = tab(AuthState, "/register")
    result = asyncio.run(state.register(form))
    assert redirect_target(result) == "/account"
    assert toasts(result) == [("success", "Welcome to CNOP! Fund your account to start trading.")]
    assert auth.authenticate(session_token(state)).username == "fresh_user"
    assert auth.get_profile("fresh_user").marketing_emails_consent is True

    again = tab(AuthState, "/register")
    assert asyncio.run(again.register({**form, "email": "other@example.com"})) is None
    assert again.form_errors == {"username": "Username 'fresh_user' already exists"}
    assert session_token(again) == ""


def test_register_form_errors_are_shown_under_their_fields(ui_env: Path) -> None:
    state = tab(AuthState, "/register")
    assert asyncio.run(state.register({**user_payload("mismatch_1"), "confirm_password": "different"})) is None
    assert state.form_errors == {"confirm_password": "Passwords do not match"}
    assert asyncio.run(state.register({**user_payload("bad name!"), "confirm_password": STRONG_PASSWORD})) is None
    assert list(state.form_errors) == ["username"]


def test_register_and_first_login_are_one_transaction(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration commits only with its first session: a failing login leaves no half-made user."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AuthenticationFailed("Invalid username or password")

    monkeypatch.setattr(auth, "login", refuse)
    state = tab(AuthState, "/register")
    assert asyncio.run(state.register({**user_payload("half_made"), "confirm_password": STRONG_PASSWORD})) is None
    assert state.auth_error == "Invalid username or password"
    with pytest.raises(NotFound):
        auth.get_profile("half_made")
