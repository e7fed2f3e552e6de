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
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


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


def exception_handlers(api: FastAPI) -> Mapping[Any, Any]:
    """The handlers FastAPI gives its `ExceptionMiddleware` (500 and `Exception` go to the outer
    `ServerErrorMiddleware`, there as here)."""
    return {key: handler for key, handler in api.exception_handlers.items() if key not in (500, Exception)}


async def _call_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    response = await scope["route"].endpoint(Request(scope, receive, send))
    await response(scope, receive, send)


class DirectRoutes:
    """Pure ASGI: GETs to `is_direct` routes, by exact path, answered here; everything else to `app`."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        # Built with the middleware stack, at the first request: every route is registered by then.
        self.routes = direct_routes(api)
        self.handled = ExceptionMiddleware(_call_endpoint, handlers=exception_handlers(api), debug=api.debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
            if route is not None:
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                await self.handled(scope, receive, send)
                return
        await self.app(scope, receive, send)
