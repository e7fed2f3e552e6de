"""Push new prices to every open browser of this worker (see docs/architecture.md).

After each refresh the scheduler awaits `push_prices()`: for every connected client token, the
client's live states (market table, asset page, portfolio, trade ticket...) recompute from the
process-wide caches and Reflex sends each browser its delta over the websocket. No per-client polling.

A push never trusts the username a state remembers: the client's session is verified once per push
(`AuthState._live_principal`, one query), and a tab whose session ended is signed out instead.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import reflex as rx
from reflex.istate.manager.redis import StateManagerRedis
from reflex.state import StateUpdate
from reflex_base.event import Event, EventSpec

from cnop_app.observability.logging import get_logger
from cnop_app.state.auth import AuthState

_log = get_logger("live")
_live_states: list[type[AuthState]] = []
# Bounded fan-out: enough to overlap waiting on state locks without flooding the event loop.
PUSH_CONCURRENCY = 32


def register_live_state(cls: type[AuthState]) -> None:
    """`cls` must define `_on_prices(self, principal: Principal | None) -> list[EventSpec] | None`: it
    updates the state when the client is showing it, with the user data of `principal` (verified for
    this push; None when nobody is signed in), and may return frontend events (toasts) for that client.
    Its page's load turns it live with `self._follow_prices()`, which the push relies on."""
    if cls not in _live_states:
        _live_states.append(cls)


def refresh_client(states: Sequence[AuthState]) -> list[EventSpec]:
    """One client's live states after new prices, all of one client; returns its frontend events."""
    if not states:
        return []
    principal, events = states[0]._live_principal()
    for state in states:
        events.extend(state._on_prices(principal) or [])  # type: ignore[attr-defined]
    return events


def _token_class(app: rx.App) -> type[rx.State]:
    """The state class a push opens a client's state with.

    With Redis, the state whose subtree holds every live state: one read fetches them all, where each
    `get_state` of a state not fetched yet is another round trip. In memory every state is at hand, and
    opening the whole subtree made connecting clients wait (measured: 500 browsers connecting during a
    push saw their first rows after 6-18 s instead of 0.3 s), so the first live state."""
    if not isinstance(app.state_manager, StateManagerRedis):
        return _live_states[0]
    common = _live_states[0].get_parent_state()
    while common is not None and not all(issubclass(cls, common) for cls in _live_states):
        common = common.get_parent_state()
    return common or _live_states[0]


def followed_states(first: AuthState) -> list[type[AuthState]]:
    """The live states a push updates for the tab whose first live state is `first`: that one (the
    market's, whose status every page shows) and those the tab followed (`AuthState._follow_prices`).
    A state never followed is not live, and its `_on_prices` would do nothing: opening it for each tab
    and push was work for nothing. A tab that followed none on record (a page without live data, or a
    state saved before the record existed) gets every live state, as before."""
    followed = first._followed
    if not followed:
        return list(_live_states)
    return [_live_states[0], *(cls for cls in _live_states[1:] if cls.get_full_name() in followed)]


async def _push_one(app: rx.App, token: str, cls: type[rx.State]) -> None:
    async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
        first = await root.get_state(_live_states[0])
        # `followed_states` starts with `first`'s class: the state at hand is not opened again.
        events = refresh_client([first, *[await root.get_state(cls) for cls in followed_states(first)[1:]]])
    # Frontend events (toasts for limit fills) go out after the state delta.
    if events and app.event_namespace is not None:
        await app.event_namespace.emit_update(StateUpdate(events=Event.from_event_type(events)), token)


_pushes_running = 0
_collector_was_enabled = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a push runs; it runs after, if due.

    The tabs' states are made after start-up's `gc.freeze()`, so a full collection walks every one of
    them: measured 50-130 ms with 200-500 tabs, and the first push after many tabs connected is where
    it fell due (that push took 128-164 ms instead of 48-80 ms). Collections of the younger
    generations cost 2-25 ms each, several per push. A push only makes short-lived objects, freed by
    their reference counts; nothing needs the collector until it ends."""
    global _pushes_running, _collector_was_enabled
    if _pushes_running == 0:
        _collector_was_enabled = gc.isenabled()
        gc.disable()
    _pushes_running += 1
    try:
        yield
    finally:
        _pushes_running -= 1
        if _pushes_running == 0 and _collector_was_enabled:
            gc.enable()


async def push_prices(app: rx.App) -> int:
    """Returns how many clients were updated. Run it under `collector_paused()`, with the new table's
    build (the app's `push_to_browsers` does)."""
    namespace = app.event_namespace
    if namespace is None or not _live_states:
        return 0
    tokens = list(namespace.token_to_sid.keys())
    pending = iter(tokens)
    failed: list[BaseException] = []
    cls = _token_class(app)

    async def pusher() -> None:
        # A few pushers share the clients: no task per client (at a thousand clients, creating and
        # scheduling the tasks cost as much as the pushes).
        for token in pending:
            try:
                await _push_one(app, token, cls)
            except Exception as exc:  # one client's failure must not stop the others' pushes
                failed.append(exc)

    await asyncio.gather(*(pusher() for _ in range(min(PUSH_CONCURRENCY, len(tokens)))))
    for error in failed[:3]:
        _log.error("live push failed", exc_info=error)
    return len(tokens) - len(failed)
