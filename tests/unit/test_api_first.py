"""`ApiFirst`: the API's HTTP requests skip Reflex's front layer; everything else goes through it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.types import Message, Receive, Scope, Send

from cnop_app.api import ApiFirst, create_api


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
