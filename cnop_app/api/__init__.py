"""The REST API under /api/v1 (plus /health and /metrics at the root), mounted into the Reflex app."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import NamedTuple

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from cnop_app.api import account as account_routes
from cnop_app.api import admin as admin_routes
from cnop_app.api import auth as auth_routes
from cnop_app.api import balance as balance_routes
from cnop_app.api import logos as logo_routes
from cnop_app.api import market as market_routes
from cnop_app.api import session_cookie as session_cookie_routes
from cnop_app.api import trading as trading_routes
from cnop_app.api.direct import DirectRoutes
from cnop_app.api.errors import install_error_handlers
from cnop_app.api.ratelimit import ApiRateLimits
from cnop_app.api.schemas.common import errors
from cnop_app.api.schemas.ops import HealthOut
from cnop_app.config import get_settings
from cnop_app.domain.errors import AuthenticationFailed, NotFound
from cnop_app.observability.metrics import render
from cnop_app.observability.middleware import RequestContextMiddleware
from cnop_app.services import health
from cnop_app.services.ratelimit import RateLimiter

API_PREFIX = "/api/v1"
API_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
METRICS_RESPONSE = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    # Spelled out: a `model` would take the route's text/plain media type.
    401: {
        "description": "CNOP_METRICS_TOKEN is set and the request does not carry it",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    },
}
RATE_LIMIT_NOTE = (
    " Every /api response carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (seconds"
    " until a request token comes back); past the limit the answer is 429 with Retry-After."
)
# The metrics token (CNOP_METRICS_TOKEN) for /metrics and the detailed /health: Prometheus' `authorization`.
metrics_bearer = HTTPBearer(
    auto_error=False, scheme_name="MetricsToken", description="CNOP_METRICS_TOKEN, when the operator set one"
)


def _metrics_token_given(authorization: str | None) -> bool | None:
    """None when no metrics token is configured, else whether `Authorization` carries it (constant time)."""
    expected = get_settings().metrics_token
    if not expected:
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def create_api(direct_routes: bool = True) -> FastAPI:
    """The API app. `direct_routes=False` leaves every request to FastAPI's router (the tests compare the two)."""
    api = FastAPI(
        title="CNOP API",
        version="1.0.0",
        description=(
            "Cloud Native Order Processor: paper trading REST API. Money is sent and returned as decimal strings."
            + RATE_LIMIT_NOTE
        ),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # Response models render through JSONResponse (json.dumps), not pydantic's JSON writer: asset figures
        # stay JSON numbers written the way Python writes floats (1.172e-05, not 0.00001172).
        default_response_class=JSONResponse,
        # CNOP observes itself with Prometheus metrics and JSON logs. FastAPI's OpenTelemetry bridge,
        # on by default, looked up three global OpenTelemetry providers on every request (8 us) to
        # learn that none is configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(api)
    # Routes are matched in this order, one by one: the busiest routers first. Each router is included
    # straight into the app (not through a /api/v1 parent router): every level of included routers is
    # matched twice per request in FastAPI, and that matching was a fifth of a hot request's CPU. The
    # balance's five routes go before the orders: the cheapest read pays least for its matching (4-7 %
    # of a balance request), an order's matching is a small part of the order.
    for module in (
        balance_routes,
        trading_routes,
        market_routes,
        auth_routes,
        session_cookie_routes,
        logo_routes,
        account_routes,
        admin_routes,
    ):
        # Every API route may be rate-limited: 429 is documented on each.
        api.include_router(module.router, prefix=API_PREFIX, responses=errors(429))

    @api.get(
        "/health",
        tags=["ops"],
        response_model=HealthOut,
        response_model_exclude_none=True,
        responses={503: {"model": HealthOut, "description": "A component is down"}},
    )
    def get_health(request: Request, response: Response) -> HealthOut:
        """The overall status; each component's report only with the metrics token. 503 while one is down."""
        result = HealthOut.of(health.report())
        if result.status == "down":
            response.status_code = 503
        # Read from the request, not declared: the status itself never needs credentials.
        if not _metrics_token_given(request.headers.get("authorization")):
            # Anonymous callers (probes, anyone) learn the status, not the internals.
            return HealthOut(status=result.status)
        return result

    @api.get(
        "/metrics",
        tags=["ops"],
        response_class=PlainTextResponse,
        responses=METRICS_RESPONSE,
        # Appended to the dependency's requirement: no credentials is fine too (no token configured).
        openapi_extra={"security": [{}]},
    )
    def get_metrics(request: Request, _: HTTPAuthorizationCredentials | None = Depends(metrics_bearer)) -> Response:
        """Prometheus exposition; with CNOP_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
        if _metrics_token_given(request.headers.get("authorization")) is False:
            raise AuthenticationFailed("Not authenticated")
        body, content_type = render()
        return Response(body, media_type=content_type)

    @api.api_route("/api/{path:path}", methods=[*API_METHODS, "OPTIONS", "TRACE"], include_in_schema=False)
    def unknown_api_route(path: str, request: Request) -> None:
        # Unknown API paths answer JSON 404 instead of falling through to the web frontend; a known path
        # with another method is 405 (this catch-all would otherwise take the method the route lacks).
        routes = [route for route in api.router.routes if getattr(route, "endpoint", None) is not unknown_api_route]
        if any(route.matches(request.scope)[0] == Match.PARTIAL for route in routes):
            allowed = [
                method
                for method in API_METHODS
                if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
            ]
            raise StarletteHTTPException(405, headers={"Allow": ", ".join(allowed)})
        raise NotFound(f"Not found: {request.url.path}")

    settings = get_settings()
    limiter = RateLimiter.from_settings(settings)
    guard = ApiRateLimits(limiter, API_PREFIX) if limiter is not None else None
    if direct_routes:
        # Added first, so it runs inside the request context (ids, limits, metrics, access log) and CORS.
        api.add_middleware(DirectRoutes, api=api)
    # Metrics, logs and the activity monitor name a route by its whole template (/api/v1/balance): the
    # route in the scope knows only its router's part. Keyed by identity: the app holds every route.
    full_paths = {
        id(context.original_route): context.path for context in iter_route_contexts(api.routes) if context.path
    }
    api.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, guard=guard, full_paths=full_paths
    )
    return api


class ApiFirst:
    """Pure ASGI, outermost: HTTP requests for the API's own paths go straight to `api_stack` (the API
    behind the security headers); the browsers' websockets to Reflex's event endpoint go straight to
    `events` (see `cnop_app.event_socket`); pages, other websockets and the lifespan go to Reflex's
    app, `top`.

    Reflex puts a Starlette app of its own in front of everything: its error and CORS middleware, a
    middleware that binds Reflex's state contexts (the API never touches Reflex state) and a router
    whose catch-all mount copies the scope. The API, mounted inside, has its own error handling and
    the same CORS middleware, so for its requests that layer was work done twice."""

    def __init__(self, top: ASGIApp, api_stack: ASGIApp, api: FastAPI, events: EventLane | None = None) -> None:
        self.top = top
        self.api_stack = api_stack
        self.events = events
        # /health, /metrics and the docs; every other API path is under /api/ (its 404 included).
        paths = (getattr(route, "path", "") for route in api.routes)
        self.exact = frozenset(path for path in paths if path and "{" not in path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"].startswith("/api/") or scope["path"] in self.exact):
            await self.api_stack(scope, receive, send)
        elif self.events is not None and scope["type"] == "websocket" and self.events.matches(scope):
            await self.events.app(scope, receive, send)
        else:
            await self.top(scope, receive, send)


class EventLane(NamedTuple):
    """Where `ApiFirst` sends a websocket that `matches`."""

    matches: Callable[[Scope], bool]
    app: ASGIApp
