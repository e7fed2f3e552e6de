"""Past visitors cost nothing: a closed tab's UI state is dropped from the worker's memory after
CNOP_UI_STATE_KEEP_SECONDS, on Reflex's real in-memory state manager."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import reflex as rx
from reflex.istate.manager.memory import StateManagerMemory

from cnop_app.state.market import MarketState
from cnop_app.state.visitors import SWEEP_SECONDS, forget_past_visitors, sweep_interval

KEEP = 300.0


def _token(ident: str) -> rx.BaseStateToken:
    return rx.BaseStateToken(ident=ident, cls=MarketState)


async def _scenario() -> None:
    manager = StateManagerMemory()
    started = time.time()
    for ident in ("open-tab", "closed-tab", "busy-tab"):
        root = await manager.get_state(_token(ident))
        (await root.get_state(MarketState)).search = f"typed in {ident}"

    # Within the keep time nothing goes, connected or not.
    assert forget_past_visitors(manager, {"open-tab"}, KEEP, now=started + KEEP / 2) == 0
    assert set(manager.states) == {"open-tab", "closed-tab", "busy-tab"}

    # Past it, the closed tab's state goes; the open tab's stays, and so does a state being modified.
    async with manager.modify_state(_token("busy-tab")):
        assert forget_past_visitors(manager, {"open-tab"}, KEEP, now=started + KEEP + 1) == 1
    assert set(manager.states) == {"open-tab", "busy-tab"}
    assert "closed-tab" not in manager._token_expires_at and "closed-tab" not in manager._states_locks

    # The closed tab coming back later starts from a fresh state (its page reloads its data on load).
    back = await (await manager.get_state(_token("closed-tab"))).get_state(MarketState)
    assert back.search == ""
    kept = await (await manager.get_state(_token("open-tab"))).get_state(MarketState)
    assert kept.search == "typed in open-tab"
    await manager.close()


def test_a_closed_tab_state_is_dropped_after_the_keep_time(ui_env: Path) -> None:
    asyncio.run(_scenario())


def test_the_sweep_runs_often_enough_but_at_most_every_minute() -> None:
    assert sweep_interval(300) == SWEEP_SECONDS == 60
    assert sweep_interval(10) == 5
    assert sweep_interval(0.5) == 1
