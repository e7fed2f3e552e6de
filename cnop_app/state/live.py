"""Push new prices to every open browser of this worker (see docs/architecture.md).

After each refresh the scheduler awaits `push_prices()`: for every connected client token, the
client's live states (market table, asset page, portfolio, trade ticket...) recompute from the
process-wide caches and Reflex sends each browser its delta over the websocket. No per-client polling.

A push never trusts the username a state remembers: the client's session is verified once per push
(`AuthState._live_principal`, one query), and a tab whose session ended is signed out instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import reflex as rx
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
    this push; None when nobody is signed in), and may return frontend events (toasts) for that client."""
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


async def _push_one(app: rx.App, token: str, gate: asyncio.Semaphore) -> None:
    events: list[EventSpec] = []
    async with gate:
        async with app.modify_state(rx.BaseStateToken(ident=token, cls=_live_states[0])) as root:
            events = refresh_client([await root.get_state(cls) for cls in _live_states])
        # Frontend events (toasts for limit fills) go out after the state delta.
        if events and app.event_namespace is not None:
            await app.event_namespace.emit_update(StateUpdate(events=Event.from_event_type(events)), token)


async def push_prices(app: rx.App) -> int:
    """Returns how many clients were updated."""
    namespace = app.event_namespace
    if namespace is None or not _live_states:
        return 0
    tokens = list(namespace.token_to_sid.keys())
    gate = asyncio.Semaphore(PUSH_CONCURRENCY)
    results = await asyncio.gather(*(_push_one(app, t, gate) for t in tokens), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    for error in failed[:3]:
        _log.error("live push failed", exc_info=error)
    return len(tokens) - len(failed)
