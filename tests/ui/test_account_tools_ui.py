"""Every user's account tools in the UI: the watchlist star (market table, asset page) shown live on the
dashboard, and resetting the paper account after a confirmation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from cnop_app.services import market as market_service
from cnop_app.services import trading, watchlist
from cnop_app.state.account import AccountState
from cnop_app.state.auth import AuthState
from cnop_app.state.dashboard import DashboardState
from cnop_app.state.live import refresh_client
from cnop_app.state.market import AssetState, MarketState, snapshot
from tests.support.trading_fixtures import account_of, holding_of, set_price
from tests.ui.helpers import app_tree, listed_asset, sign_up, substate, toasts


def test_the_star_in_the_market_table_and_on_the_asset_page_fills_the_dashboard(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    listed_asset("BBB", "20")
    token = sign_up("starry_1", cash="100")
    root = app_tree("/market", token)
    market = substate(root, MarketState)
    market.load()
    assert market.starred == []
    assert toasts(market.toggle_star("bbb")) == [("success", "BBB added to your watchlist")]
    assert market.starred == ["BBB"]

    asset_root = app_tree("/market/AAA", token)
    asset = substate(asset_root, AssetState)
    asset.load()
    assert not asset.starred
    asset.toggle_star()
    assert asset.starred and watchlist.asset_ids("starry_1") == {"AAA", "BBB"}

    dash_root = app_tree("/dashboard", token)
    dashboard = substate(dash_root, DashboardState)
    dashboard.load()
    assert [r["id"] for r in dashboard.watched] == ["BBB", "AAA"]  # oldest star first
    assert dashboard.watched[0]["price"] == "$20.00"

    # Live: the next push shows the new price, flashing.
    set_price("BBB", "25")
    market_service.clear_cache()
    snapshot.clear()  # as a refresh's new market version would
    refresh_client([substate(dash_root, DashboardState)])
    row = dashboard.watched[0]
    assert row["price"] == "$25.00" and row["flash"] == "changed"

    market.toggle_star("BBB")
    assert market.starred == ["AAA"]
    assert toasts(market.toggle_star("NOPE")) == [("error", "Asset NOPE not found")]


def test_a_stranger_starring_is_sent_to_log_in(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    market = substate(app_tree("/market"), MarketState)
    market.load()
    assert market.toggle_star("AAA") is AuthState.require_login
    assert market.starred == []


def test_reset_account_reviews_then_resets_once(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    token = sign_up("reset_ui1", cash="1000")
    trading.place_order("reset_ui1", {"order_type": "market_buy", "asset_id": "AAA", "quantity": "3"})
    trading.place_order("reset_ui1", {"order_type": "limit_buy", "asset_id": "AAA", "quantity": "1", "price": "5"})
    account = substate(app_tree("/account", token), AccountState)
    account.load()

    account.review_reset({"starting_cash": "-5"})
    assert account.reset_error == "starting_cash must not be negative" and not account.reset_review
    account.review_reset({"starting_cash": "5000"})
    assert account.reset_review and account.reset_amount == "$5,000.00"
    assert (account.reset_orders, account.reset_positions) == (1, 1)
    assert account.reset_summary.startswith("1 open order will be cancelled and 1 holding sold")
    assert account_of("reset_ui1").cash < 1000  # nothing changed yet

    result = account.confirm_reset()
    assert toasts(result)[0][0] == "success" and not account.reset_review
    assert account_of("reset_ui1").cash == Decimal("5000") and account_of("reset_ui1").held == 0
    assert holding_of("reset_ui1", "AAA").quantity == 0
    assert account.balance == "$5,000.00"
    assert account.confirm_reset() is None  # a second click of the same confirmation does nothing
    assert account.history[0]["type"] == "system adjustment"


def test_cancelling_the_reset_changes_nothing(ui_env: Path) -> None:
    token = sign_up("reset_ui2", cash="100")
    account = substate(app_tree("/account", token), AccountState)
    account.load()
    account.review_reset({"starting_cash": "10"})
    account.cancel_reset()
    assert not account.reset_review and account.confirm_reset() is None
    assert account_of("reset_ui2").cash == Decimal("100")
