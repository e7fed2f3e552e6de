"""`ApiFirst`: the API's HTTP requests skip Reflex's front layer, the browsers' event websockets skip every
layer (`EventSocket`); everything else goes through Reflex."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Mount
from starlette.types import Message, Receive, Scope, Send

from cnop_app.api import ApiFirst, EventLane, create_api
from cnop_app.event_socket import EventSocket, event_mount


class Recorder:
    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append((scope["type"], scope.get("path", "")))


async def _receive() -> Message:
    return {"type": "http.disconnect"}


async def _send(message: Message) -> None:
    return None


def _route(lane: ApiFirst, scope_type: str, path: str = "") -> None:
    scope: Scope = {"type": scope_type} if scope_type == "lifespan" else {"type": scope_type, "path": path}
    asyncio.run(lane(scope, _receive, _send))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/balance",
        "/api/v1/orders",
        "/api/v1/nothing-here",  # the API's JSON 404, not the frontend's page
        "/health",
        "/metrics",
        "/docs",
        "/openapi.json",
        "/docs/oauth2-redirect",
    ],
)
def test_api_paths_go_straight_to_the_api(cnop_env: Path, path: str) -> None:
    top, api_stack = Recorder(), Recorder()
    _route(ApiFirst(top, api_stack, create_api()), "http", path)
    assert api_stack.paths == [("http", path)] and top.paths == []


@pytest.mark.parametrize(
    ("scope_type", "path"),
    [
        ("http", "/"),
        ("http", "/market"),
        ("http", "/api"),  # not under /api/: the frontend's, as before
        ("http", "/healthz"),
        ("http", "/ping"),  # Reflex's own route
        ("http", "/_upload"),
        ("http", "/assets/app.js"),
        ("websocket", "/_event"),
        ("websocket", "/api/v1/balance"),  # the API has no websockets
        ("lifespan", ""),
    ],
)
def test_pages_websockets_and_the_lifespan_go_through_reflex(cnop_env: Path, scope_type: str, path: str) -> None:
    top, api_stack = Recorder(), Recorder()
    _route(ApiFirst(top, api_stack, create_api()), scope_type, path)
    assert top.paths == [(scope_type, path)] and api_stack.paths == []


def _event_lane(recorder: Recorder) -> EventLane:
    socket = EventSocket(Mount("/_event", recorder), contextlib.nullcontext)
    return EventLane(socket.matches, socket)


@pytest.mark.parametrize("path", ["/_event/", "/_event/socket.io/"])
def test_the_browsers_event_websocket_skips_every_layer(cnop_env: Path, path: str) -> None:
    top, api_stack, events = Recorder(), Recorder(), Recorder()
    _route(ApiFirst(top, api_stack, create_api(), _event_lane(events)), "websocket", path)
    assert events.paths == [("websocket", path)] and top.paths == [] and api_stack.paths == []


@pytest.mark.parametrize(
    ("scope_type", "path"),
    [
        ("http", "/_event/"),  # Socket.IO's polling transport: through Reflex, as before
        ("websocket", "/_event"),  # not what the mount matches: Reflex answers it, as before
        ("websocket", "/_events"),
        ("websocket", "/market"),
        ("lifespan", ""),
    ],
)
def test_everything_else_still_goes_through_reflex(cnop_env: Path, scope_type: str, path: str) -> None:
    top, api_stack, events = Recorder(), Recorder(), Recorder()
    _route(ApiFirst(top, api_stack, create_api(), _event_lane(events)), scope_type, path)
    assert top.paths == [(scope_type, path)] and events.paths == [] and api_stack.paths == []


def test_the_event_socket_routes_as_the_mount_does_with_reflex_contexts_set() -> None:
    seen: list[tuple[str, str, bool]] = []
    inside = contextvars.ContextVar("inside", default=False)

    @contextlib.contextmanager
    def contexts() -> Iterator[None]:
        token = inside.set(True)
        try:
            yield
        finally:
            inside.reset(token)

    async def socket_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["path"], scope["root_path"], inside.get()))

    mount = Mount("/_event", socket_app)
    scope: Scope = {"type": "websocket", "path": "/_event/", "root_path": "", "query_string": b"EIO=4"}
    # What Starlette's router hands the mounted app, for comparison.
    _, expected = mount.matches(dict(scope))
    asyncio.run(EventSocket(mount, contexts)(dict(scope), _receive, _send))
    assert seen == [("/_event/", expected["root_path"], True)] and not inside.get()
    with pytest.raises(ValueError, match="not Reflex's event endpoint"):
        asyncio.run(EventSocket(mount, contexts)({**scope, "path": "/market"}, _receive, _send))


def test_the_event_mount_is_found_or_its_absence_said() -> None:
    mount = Mount("/_event", Recorder())
    assert event_mount([Mount("/other", Recorder()), mount], "/_event") is mount
    with pytest.raises(LookupError, match="not mounted"):
        event_mount([Mount("/other", Recorder())], "/_event")
