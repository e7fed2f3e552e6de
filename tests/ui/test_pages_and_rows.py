"""Every page builds against the typed state rows; the rows and error maps behave as pages expect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import reflex as rx
from reflex_base.utils.exceptions import VarAttributeError

from cnop_app.components.layout import toaster
from cnop_app.domain.errors import BusinessRuleViolation, ValidationFailed
from cnop_app.pages import account, asset, auth, dashboard, market, orders, portfolio, profile, trade
from cnop_app.services import trading as trading_service
from cnop_app.state.market import FIRST_ROWS, AssetState, MarketState
from cnop_app.state.portfolio import PortfolioState
from cnop_app.state.rows import TicketErrors, error_for, shows
from tests.ui.helpers import listed_asset, sign_up, tab

PAGES: list[Callable[[], rx.Component]] = [
    auth.landing,
    auth.login,
    auth.register,
    account.account,
    profile.profile,
    market.market,
    asset.asset,
    dashboard.dashboard,
    trade.trade,
    portfolio.portfolio,
    orders.orders,
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.__name__)
def test_every_page_builds(page: Callable[[], rx.Component]) -> None:
    # Building type-checks every row key a page reads against its TypedDict.
    assert str(page())


def test_a_market_row_is_plain_elements_styled_by_classes() -> None:
    # /market renders up to 100 rows (a screenful, then the rest): a style prop per element (an Emotion wrapper each),
    # icon components and tooltip roots per row took most of its first-rows budget (bench/browser.py).
    row = str(rx.foreach(MarketState.rows, market._row))
    assert "Lucide" not in row and "Tooltip" not in row
    # Radix's table row, cells, avatar, icon button and link are React components that work out their
    # props per render: the row is their elements with their classes instead.
    for component in ("RadixThemesTable", "RadixThemesAvatar", "RadixThemesIconButton", "RadixThemesLink"):
        assert component not in row, component
    assert '"rt-TableRow market-row"' in row and row.count("rt-TableCell") == 9
    assert "css:" not in row, row  # the link's hover colour and the star's padding are classes too
    # The chart library loads with the asset page's module alone: Reflex bundles a page module's parts.
    assert not hasattr(market, "area_chart")


def test_the_market_table_renders_a_screenful_first_then_asks_for_the_rest() -> None:
    # The render of the whole table grows with every row; the first screenful shows sooner alone.
    page = market.market()
    body = str(page)
    assert "all_rows_rx_state_ ? " in body and f" : {FIRST_ROWS}))" in body, body  # rows.slice(0, limit)
    asks = [h for h in page._get_all_hooks() if "useEffect" in h and "market_state.show_all_rows" in h]
    assert len(asks) == 1  # sent once the first rows have mounted


def test_the_toaster_does_not_ask_the_browser_for_the_page_direction() -> None:
    # Without `dir`, sonner calls getComputedStyle(document.documentElement) on every render of the
    # Toaster: a forced style computation of the whole page, seen inside the commit of /market's rows.
    assert 'dir:"ltr"' in str(toaster())


def test_the_portfolio_value_axis_is_in_whole_dollars_and_prices_keep_their_decimals() -> None:
    # Decimal ticks labelled a portfolio that moved by a cent 4999.9975, 4999.995... (wider than the
    # axis, clipped) and drew the cent as a fall across the whole chart. A coin's price needs decimals.
    assert "allowDecimals:false" in str(portfolio.portfolio())
    assert "allowDecimals:true" in str(asset.asset())


def test_a_key_a_row_does_not_declare_fails_at_build_time() -> None:
    with pytest.raises(VarAttributeError):
        AssetState.detail["no_such_field"]
    with pytest.raises(VarAttributeError):
        rx.foreach(MarketState.rows, lambda row: rx.text(row["no_such_field"]))


def test_errors_go_under_their_field_or_on_the_form() -> None:
    assert shows(TicketErrors, "quantity") and not shows(TicketErrors, "client_order_id")
    assert error_for(TicketErrors, ValidationFailed("quantity is required", "quantity")) == {
        "quantity": "quantity is required"
    }
    # No input for this field on the ticket: the message must still be seen.
    assert error_for(TicketErrors, ValidationFailed("too long", "client_order_id")) == {"form": "too long"}
    assert error_for(TicketErrors, BusinessRuleViolation("Trading paused")) == {"form": "Trading paused"}


def test_portfolio_range_switch(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    state = tab(PortfolioState, "/portfolio", token=sign_up("ranger", cash="100"))
    trading_service.place_order("ranger", {"order_type": "market_buy", "asset_id": "AAA", "quantity": "2"})
    assert state.load() is None
    assert state.history_range == "24h"
    assert [h["id"] for h in state.holdings] == ["AAA"]
    assert state.totals["holdings_value"] == "$20.00"
    assert {s["name"] for s in state.allocation} == {"AAA", "Cash"}
    state.set_history_range("7d")
    assert state.history_range == "7d"
    state.set_history_range("1y")  # not a range: ignored
    assert state.history_range == "7d"


def test_market_table_searches_and_sorts(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    listed_asset("BBB", "2")
    state = tab(MarketState, "/market")
    state.load()
    assert {r["id"] for r in state.rows} == {"AAA", "BBB"}
    state.sort_by("price")
    assert [r["id"] for r in state.rows] == ["AAA", "BBB"]  # price sorts high to low first
    state.set_search("bb")
    assert [r["id"] for r in state.rows] == ["BBB"]
    assert state.prices["BBB"] == "$2.00" and "BBB" not in state.flash  # no price moved: nothing flashes


def test_asset_page_reads_its_id_from_the_path(ui_env: Path) -> None:
    listed_asset("AAA", "10")
    state = tab(AssetState, "/market/aaa")
    state.load()
    assert state.found and state.current_id == "AAA"
    assert state.detail["price"] == "$10.00" and state.detail["name"] == "Aaa coin"
    state.set_range("30d")
    assert state.chart_range == "30d"
    state.set_range("1y")
    assert state.chart_range == "30d"
    missing = tab(AssetState, "/market/nope")
    missing.load()
    assert not missing.found
