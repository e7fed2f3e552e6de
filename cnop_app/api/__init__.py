"""The REST API under /api/v1 (plus /health and /metrics at the root), mounted into the Reflex app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from cnop_app.api import auth as auth_routes
from cnop_app.api import balance as balance_routes
from cnop_app.api import market as market_routes
from cnop_app.api import trading as trading_routes
from cnop_app.api.errors import install_error_handlers
from cnop_app.api.schemas.ops import HealthOut
from cnop_app.config import get_settings
from cnop_app.domain.errors import NotFound
from cnop_app.observability.metrics import render
from cnop_app.observability.middleware import RequestContextMiddleware
from cnop_app.services import health

API_PREFIX = "/api/v1"
METRICS_RESPONSE = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def create_api() -> FastAPI:
    api = FastAPI(
        title="CNOP API",
        version="1.0.0",
        description=(
            "Cloud Native Order Processor: paper trading REST API. Money is sent and returned as decimal strings."
        ),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # Response models render through JSONResponse (json.dumps), not pydantic's JSON writer: asset figures
        # stay JSON numbers written the way Python writes floats (1.172e-05, not 0.00001172).
        default_response_class=JSONResponse,
    )
    install_error_handlers(api)
    v1 = APIRouter(prefix=API_PREFIX)
    for module in (auth_routes, balance_routes, market_routes, trading_routes):
        v1.include_router(module.router)
    api.include_router(v1)

    @api.get(
        "/health",
        tags=["ops"],
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "A component is down"}},
    )
    def get_health(response: Response) -> HealthOut:
        result = HealthOut.of(health.report())
        if result.status == "down":
            response.status_code = 503
        return result

    @api.get("/metrics", tags=["ops"], response_class=PlainTextResponse, responses=METRICS_RESPONSE)
    def get_metrics() -> Response:
        body, content_type = render()
        return Response(body, media_type=content_type)

    @api.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown_api_route(path: str, request: Request) -> None:
        # Unknown API paths answer JSON 404 instead of falling through to the web frontend.
        raise NotFound(f"Not found: {request.url.path}")

    api.add_middleware(RequestContextMiddleware, max_body_bytes=get_settings().max_body_bytes)
    return api
