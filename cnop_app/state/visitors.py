"""Past visitors cost nothing: a closed browser tab's UI state is dropped after a short while.

Without Redis (the default one-worker deployment) Reflex keeps each tab's state tree in the worker's
memory until its token expires, an hour after the tab's last event. A tab that closed its websocket
keeps its state here for `CNOP_UI_STATE_KEEP_SECONDS` (5 minutes by default): a reload or a reconnect
within that time finds the tab as it was; later the tab rehydrates from scratch, as it would after
Reflex's own expiry (every page reloads its data on load). With Redis, Redis expires the states.

After states were dropped, a garbage collection and glibc's `malloc_trim` hand the freed memory back
to the system, so that the worker's RSS goes down, not only its Python heap.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import time
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import reflex as rx
from reflex.istate.manager import StateManager
from reflex.istate.manager.memory import StateManagerMemory

from cnop_app.observability.logging import get_logger

_log = get_logger("visitors")
# The process's own symbols, the C library's among them: `malloc_trim` is glibc's (with another C
# library it is absent, and nothing is trimmed).
_LIBC = ctypes.CDLL(None)
# How often a worker looks for states to drop, at most.
SWEEP_SECONDS = 60.0


def forget_past_visitors(
    manager: StateManager, connected: Collection[str], keep_seconds: float, now: float | None = None
) -> int:
    """Drop the in-memory UI state of every client token not in `connected` whose state was last used
    more than `keep_seconds` ago (and is not being modified right now). Returns how many were dropped.

    Runs on the event loop, like Reflex's own expiry of these states (no other thread touches them)."""
    if not isinstance(manager, StateManagerMemory):
        return 0
    now = time.time() if now is None else now
    dropped = 0
    # Reflex records, per state, when it expires: last use + token_expiration.
    for expires_at, token in list(manager._token_expires_at.values()):
        last_used = expires_at - manager.token_expiration
        if token.ident in connected or now - last_used < keep_seconds:
            continue
        lock = manager._states_locks.get(token.lock_key)
        if lock is not None and lock.locked():
            continue
        manager._purge_token(token)
        dropped += 1
    if dropped:
        gc.collect()
        trim = getattr(_LIBC, "malloc_trim", None)
        if trim is not None:
            trim(0)
    return dropped


def sweep_interval(keep_seconds: float) -> float:
    """Often enough that a state is dropped within about 1.5x `keep_seconds`, at most every minute."""
    return max(1.0, min(SWEEP_SECONDS, keep_seconds / 2))


@asynccontextmanager
async def forgetting_past_visitors(app: rx.App, keep_seconds: float) -> AsyncIterator[None]:
    """A worker's lifespan: sweep its in-memory UI states while it runs."""

    async def sweep() -> None:
        while True:
            await asyncio.sleep(sweep_interval(keep_seconds))
            namespace = app.event_namespace
            connected = set(namespace.token_to_sid) if namespace is not None else set()
            try:
                dropped = forget_past_visitors(app.state_manager, connected, keep_seconds)
            except Exception:  # a failed sweep must not end the sweeping
                _log.exception("dropping past visitors' UI state failed")
                continue
            if dropped:
                _log.info("dropped past visitors' UI state", extra={"states": dropped, "connected": len(connected)})

    task = asyncio.create_task(sweep(), name="cnop-forget-past-visitors")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
