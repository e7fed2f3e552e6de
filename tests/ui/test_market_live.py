"""The live market table: a push assigns only what changed, and every client shares the same data."""

from __future__ import annotations

from pathlib import Path

import pytest
import reflex as rx

from cnop_app.services import market as market_service
from cnop_app.state import market as market_state
from cnop_app.state.live import refresh_client
from cnop_app.state.market import NO_FLASH, MarketState, snapshot
from tests.support.trading_fixtures import set_price
from tests.ui.helpers import app_tree, listed_asset, substate

MARKET_VARS = {"rows", "prices", "changes", "mcaps", "volumes", "sparks", "flash"}


class Versions:
    """The shared market version, moved by hand (a refresh bumps it after storing new prices)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.version = 1
        monkeypatch.setattr(market_state.market, "market_version", lambda: self.version)

    def bump(self) -> int:
        self.version += 1
        market_service.clear_cache()
        snapshot.invalidate()  # as the live push does after a refresh
        return self.version


def _tab() -> tuple[rx.State, MarketState]:
    root = app_tree("/market")
    market = substate(root, MarketState)
    market.load()
    root._clean()  # what the load sent is delivered
    return root, market


def _push(root: rx.State, market: MarketState) -> set[str]:
    """One live push to the tab; the market vars it sends."""
    refresh_client([market])
    sent = set(root.get_delta().get(market.get_full_name(), {}))
    root._clean()
    return {name.removesuffix("_rx_state_") for name in sent} & MARKET_VARS


@pytest.fixture
def versions(ui_env: Path, monkeypatch: pytest.MonkeyPatch) -> Versions:
    listed_asset("AAA", "10")
    listed_asset("BBB", "2")
    return Versions(monkeypatch)


def test_a_push_sends_the_prices_that_moved_and_flashes_them(versions: Versions) -> None:
    root, market = _tab()
    assert [r["id"] for r in market.rows] == ["AAA", "BBB"] and market.flash == {}

    set_price("BBB", "3")
    version = versions.bump()
    assert _push(root, market) == {"prices", "flash"}  # the rows, sparklines and other fields did not change
    assert market.prices["BBB"] == "$3.00" and market.prices["AAA"] == "$10.00"
    assert market.flash == {"BBB": f"BBB-{version}"}  # re-keyed per version: the flash replays

    # Nothing moved: the flash ends (the price element goes back to its plain key) and nothing else is sent.
    versions.bump()
    assert _push(root, market) == {"flash"}
    assert market.get_value("flash") is NO_FLASH
    assert _push(root, market) == set()


def test_every_client_shares_one_copy_of_the_table(versions: Versions) -> None:
    (root_a, a), (root_b, b) = _tab(), _tab()
    for name in MARKET_VARS - {"flash"}:  # nothing flashes on a first load
        assert a.get_value(name) is b.get_value(name), name
    set_price("AAA", "11")
    versions.bump()
    _push(root_a, a)
    _push(root_b, b)
    for name in MARKET_VARS:
        assert a.get_value(name) is b.get_value(name), name
    assert a.flash == {"AAA": f"AAA-{versions.version}"}
    # The maps a push did not change are the very objects the clients already had.
    assert a.get_value("changes") is snapshot.current().changes


def test_the_table_asks_for_its_other_rows_once_and_keeps_them(versions: Versions) -> None:
    # The page renders the first rows, then asks for the rest (the browser side: tests/browser).
    root, market = _tab()
    assert market.all_rows is False
    market.show_all_rows()
    sent = root.get_delta()[market.get_full_name()]
    assert {name.removesuffix("_rx_state_") for name in sent} == {"all_rows"}  # not the table again
    root._clean()
    # A reconnect reruns `load` while the table stays mounted: its request would not come again.
    market.load()
    versions.bump()
    _push(root, market)
    assert market.all_rows is True


def test_a_push_keeps_the_order_and_appends_new_assets(versions: Versions) -> None:
    root, market = _tab()
    market.sort_by("price")
    assert [r["id"] for r in market.rows] == ["AAA", "BBB"]
    set_price("BBB", "20")  # now the dearest: the rows must not jump under the cursor
    listed_asset("CCC", "5")
    versions.bump()
    assert "rows" in _push(root, market)  # a new row
    assert [r["id"] for r in market.rows] == ["AAA", "BBB", "CCC"]
    market.sort_by("price")  # sorting again uses the new prices (now low to high)
    assert [r["id"] for r in market.rows] == ["CCC", "AAA", "BBB"]
    market.set_search("cc")
    assert [r["id"] for r in market.rows] == ["CCC"]
    assert market.prices["CCC"] == "$5.00" and market.flash == {}


def test_sparklines_are_polylines_scaled_to_their_range() -> None:
    assert market_state._spark([]) == ["1", ""]
    assert market_state._spark([5, 5, 5]) == ["2", "0,500 1,500 2,500"]  # flat: across the middle
    # x is the point's index, y runs from 1000 (the lowest price) to 0 (the highest).
    assert market_state._spark([10, 15, 20, "12.5"]) == ["3", "0,1000 1,500 2,0 3,750"]
    width, points = market_state._spark(list(range(168)))
    assert width == "41" and len(points.split()) == 42  # about SPARK_POINTS points
