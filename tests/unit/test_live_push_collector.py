"""A live push runs without the cyclic garbage collector, and leaves it as it found it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from cnop_app.state.live import collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_during_a_push_and_enabled_after() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pushes_enable_it_when_the_last_one_ends() -> None:
    gc.enable()
    seen: list[bool] = []

    async def push(hold: float) -> None:
        with collector_paused():
            await asyncio.sleep(hold)
            seen.append(gc.isenabled())

    async def both() -> None:
        await asyncio.gather(push(0.01), push(0.05))

    asyncio.run(both())
    assert seen == [False, False]  # the first to end did not switch it back on under the other
    assert gc.isenabled()


def test_enabled_again_when_a_push_fails() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("push failed")
    assert gc.isenabled()


def test_left_off_when_it_was_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
