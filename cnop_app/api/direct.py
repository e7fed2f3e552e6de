"""Direct routes: the API's hottest GETs called straight, past FastAPI's router and request handler.

A GET to a route whose endpoint is `async def route(request: Request) -> Response` (the balance and the
portfolio: they authenticate in `deps.as_caller` and render their own body) has nothing for FastAPI to
solve: no parameters, no dependencies, no body, and a response it passes through as it is. FastAPI
still walks its router (every route's path is matched in turn), builds a request handler's dependency
context, an exit stack and two layers of exception wrapping for it: a quarter of such a request's CPU
in-process (docs/performance.md).

`DirectRoutes` sits inside the API's own middlewares (request ids, rate limits, CORS, metrics and
access log all still apply) and answers those GETs itself: the route is found by its exact path, the
endpoint called with the request, and its errors go through the API's own exception handlers (the
same `ExceptionMiddleware`, built with the handlers FastAPI would give it). Every other request goes
on to FastAPI unchanged. `scope["route"]` is set as the router sets it: metrics and logs name the
route's template either way.

A POST can have a lane too (`lane_for`): the order route, the API's hottest write. FastAPI would read
its body, decode the JSON, solve the bearer dependency and the header, validate the body model, then
call the endpoint: a fifth of an order's CPU on the event loop's thread, which is what caps orders/s.
The lane does the same steps for a request that passes every one of them and calls the route's own
endpoint; any request that does not (a body that is not JSON, a bad field, a missing or forged token,
a body sent without a Content-Length or in another content type) is handed to FastAPI unchanged, its
body replayed as it came, so every error is FastAPI's own answer, in FastAPI's order of checks.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A lane takes the request and its whole body; it answers with the endpoint's call, ready to be awaited,
# or None when FastAPI must take the request (the lane saw something it does not handle).
Call = Callable[[], Awaitable[Response]]
Lane = Callable[[Request, bytes], Awaitable[Call | None]]
_lanes: dict[Callable[..., Any], Lane] = {}
# The content types a lane takes: those FastAPI reads as JSON with `json.loads`, spelled as clients send
# them. Anything else (a missing one included) goes to FastAPI, which decides.
_JSON_TYPES = frozenset((b"application/json", b"application/json; charset=utf-8"))
# Orders are a few hundred bytes; a body declared larger (or not declared) goes to FastAPI, and with a
# declared length the request context's size check has already run.
LANE_MAX_BODY = 4096


def lane_for(endpoint: Callable[..., Any]) -> Callable[[Lane], Lane]:
    """Register `lane` as the direct way to `endpoint`, a POST route's function."""

    def register(lane: Lane) -> Lane:
        _lanes[endpoint] = lane
        return lane

    return register


def is_direct(route: object) -> bool:
    """Whether `route` is a GET that FastAPI has nothing to do for: no parameters but the Request, no
    dependencies, a coroutine endpoint declared to return a Response."""
    if not isinstance(route, APIRoute) or "GET" not in route.methods:
        return False
    dependant = route.dependant
    if (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.dependencies
        or route.dependencies
        or dependant.request_param_name is None
    ):
        return False
    endpoint = route.endpoint
    if not inspect.iscoroutinefunction(endpoint) or len(inspect.signature(endpoint).parameters) != 1:
        return False
    returned = typing.get_type_hints(endpoint).get("return")
    return isinstance(returned, type) and issubclass(returned, Response)


def direct_routes(api: FastAPI) -> dict[str, APIRoute]:
    """The `is_direct` routes by their full path (an included router's route knows only its own part)."""
    return {
        context.path: context.original_route
        for context in iter_route_contexts(api.routes)
        if context.path and is_direct(context.original_route)
    }


def direct_posts(api: FastAPI) -> dict[str, tuple[APIRoute, Lane]]:
    """The POST routes that have a lane, by their full path."""
    return {
        context.path: (route, _lanes[route.endpoint])
        for context in iter_route_contexts(api.routes)
        if context.path
        and isinstance(route := context.original_route, APIRoute)
        and "POST" in route.methods
        and route.endpoint in _lanes
    }


def exception_handlers(api: FastAPI) -> Mapping[Any, Any]:
    """The handlers FastAPI gives its `ExceptionMiddleware` (500 and `Exception` go to the outer
    `ServerErrorMiddleware`, there as here)."""
    return {key: handler for key, handler in api.exception_handlers.items() if key not in (500, Exception)}


_CALL_KEY = "cnop.direct_call"


async def _call(scope: Scope, receive: Receive, send: Send) -> None:
    """The endpoint's call that `DirectRoutes` put in the scope, inside the API's exception handling."""
    response = await scope.pop(_CALL_KEY)()
    await response(scope, receive, send)


def _lane_takes(scope: Scope) -> bool:
    """A body of declared, small length, in one of `_JSON_TYPES`, each header given once."""
    length: bytes | None = None
    content_type: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if length is not None:
                return False
            length = value
        elif name == b"content-type":
            if content_type is not None:
                return False
            content_type = value
        elif name == b"transfer-encoding":
            return False
    return content_type in _JSON_TYPES and length is not None and length.isdigit() and 0 < int(length) <= LANE_MAX_BODY


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message read, and the body (None if the client went away first)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as it was before `messages` were read from it."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class DirectRoutes:
    """Pure ASGI: GETs to `is_direct` routes and POSTs that their route's lane takes, by exact path,
    answered here; everything else to `app`."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        # Built with the middleware stack, at the first request: every route is registered by then.
        self.routes = direct_routes(api)
        self.posts = direct_posts(api)
        self.handled = ExceptionMiddleware(_call, handlers=exception_handlers(api), debug=api.debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method = scope["method"]
            if method == "GET":
                route = self.routes.get(scope["path"])
                if route is not None:
                    endpoint = route.endpoint
                    await self._answer(scope, receive, send, route, lambda: endpoint(Request(scope, receive, send)))
                    return
            elif method == "POST":
                post = self.posts.get(scope["path"])
                if post is not None and _lane_takes(scope):
                    await self._post(scope, receive, send, *post)
                    return
        await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send, route: APIRoute, lane: Lane) -> None:
        messages, body = await _read_body(receive)
        receive = _replaying(messages, receive)
        call = None if body is None else await lane(Request(scope, receive, send), body)
        if call is None:
            await self.app(scope, receive, send)
            return
        await self._answer(scope, receive, send, route, call)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, route: APIRoute, call: Call) -> None:
        # What the router sets in the scope of a request it matched (a route without path parameters).
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        scope[_CALL_KEY] = call
        await self.handled(scope, receive, send)
