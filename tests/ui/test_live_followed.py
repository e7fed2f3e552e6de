"""A live push opens the live states a tab has followed, not every live state of the app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cnop_app.state
from cnop_app.state import live
from cnop_app.state.live import followed_states, refresh_client
from cnop_app.state.live_pages import LIVE_STATES
from cnop_app.state.market import LandingState, MarketState
from cnop_app.state.portfolio import PortfolioState
from tests.ui.helpers import app_tree, listed_asset, sign_up, substate


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "_live_states", list(LIVE_STATES))


def test_a_tab_with_nothing_followed_on_record_gets_every_live_state(ui_env: Path, registered: None) -> None:
    # A tab on a page without live data, or one whose state was saved before tabs kept the record.
    root = app_tree("/account")
    assert followed_states(substate(root, MarketState)) == list(LIVE_STATES)


def test_a_push_opens_the_market_state_and_the_live_pages_the_tab_loaded(ui_env: Path, registered: None) -> None:
    listed_asset("AAA", "10")
    token = sign_up("follower", cash="100")
    root = app_tree("/market", token)
    market = substate(root, MarketState)
    market.load()
    assert followed_states(market) == [MarketState]

    assert substate(root, PortfolioState).load() is None
    substate(root, LandingState).load()
    followed = followed_states(market)
    assert followed == [MarketState, LandingState, PortfolioState]  # in the registration order
    # Each state a push skips is not live: its `_on_prices` would have changed nothing.
    skipped = [substate(root, cls) for cls in LIVE_STATES if cls not in followed]
    assert skipped and not any(state.live for state in skipped)
    root._clean()
    refresh_client([substate(root, cls) for cls in LIVE_STATES])
    assert not {name for name in root.get_delta() if name in {s.get_full_name() for s in skipped}}


def test_every_live_state_goes_live_through_the_one_method_that_records_it() -> None:
    # A state that set `live` itself would be live but never opened by a push.
    package = Path(cnop_app.state.__file__).parent
    setters = {path.name for path in package.glob("*.py") if re.search(r"\blive\s*=\s*True", path.read_text())}
    assert setters == {"auth.py"}
