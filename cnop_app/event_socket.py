"""The browsers' websocket to Reflex's event endpoint, straight to Reflex's socket app.

Reflex serves that websocket from deep inside the app: its own front Starlette app (error, CORS and
context middleware, a router), then the API's FastAPI app it is mounted in (its middleware and router),
then Reflex's inner Starlette app (middleware and router again). Each layer passes a websocket through,
but its coroutine stays alive for as long as the websocket is open: ~20 coroutines and scope copies,
~13 KB per open browser (tracemalloc of a worker with 200 browsers on /market), a seventh of what a
browser costs the server. `ApiFirst` hands these websockets to `EventSocket` instead, which does what
those layers did for them: the security middleware (audit client, request id) wraps it, it sets
Reflex's contexts (Reflex's context middleware) and it routes the scope as the Starlette mount does.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send


class EventSocket:
    """Pure ASGI: serves the websockets `mount` (Reflex's event endpoint) matches, with `contexts()`
    (Reflex's `App.set_contexts`) set for the connection's lifetime."""

    def __init__(self, mount: Mount, contexts: Callable[[], AbstractContextManager[object]]) -> None:
        self.mount = mount
        self.contexts = contexts

    def matches(self, scope: Scope) -> bool:
        return scope["type"] == "websocket" and self.mount.matches(scope)[0] is Match.FULL

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match, child = self.mount.matches(scope)
        if match is not Match.FULL:
            raise ValueError(f"not Reflex's event endpoint: {scope.get('path')!r}")
        with self.contexts():
            await self.mount.handle({**scope, **child}, receive, send)


def event_mount(routes: list[object], path: str) -> Mount:
    """The mount of Reflex's socket app among an app's `routes` (`path`: the event endpoint's)."""
    for route in routes:
        if isinstance(route, Mount) and route.path == path:
            return route
    raise LookupError(f"Reflex's event endpoint {path!r} is not mounted")
