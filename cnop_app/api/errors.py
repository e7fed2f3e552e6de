"""Map domain and framework errors to one JSON body, {"detail": ...} (`schemas.common.ErrorResponse`)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cnop_app.domain.errors import AuthenticationFailed, DomainError, RateLimited
from cnop_app.observability.logging import get_logger

_log = get_logger("api")
_SECTIONS = ("body", "query", "path", "header", "cookie")


def _clean_validation_errors(errors: list[dict]) -> list[dict]:
    cleaned = []
    seen: set[str | None] = set()
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        # ["body", "amount", "str"]: the field is what follows the section; later parts name union members.
        field = loc[1] if len(loc) > 1 and loc[0] in _SECTIONS else (loc[-1] if loc else None)
        if field in seen:
            continue  # a union type reports one error per member: keep the first
        seen.add(field)
        cleaned.append({"loc": loc[:2], "field": field, "msg": err.get("msg", "invalid"), "type": err.get("type", "")})
    return cleaned


def install_error_handlers(api: FastAPI) -> None:
    # Plain functions: nothing here awaits (Starlette runs sync handlers in its threadpool).
    @api.exception_handler(DomainError)
    def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {}
        if isinstance(exc, AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": exc.detail()}, status_code=exc.status_code, headers=headers)

    @api.exception_handler(RequestValidationError)
    def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(_clean_validation_errors(list(exc.errors())))}, status_code=422)

    @api.exception_handler(StarletteHTTPException)
    def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, UnicodeDecodeError):
            # A body that is not UTF-8 (FastAPI's 400) is invalid JSON like any other: 422 naming the body.
            body_error = {"loc": ["body"], "field": "body", "msg": "body must be UTF-8 JSON", "type": "json_invalid"}
            return JSONResponse({"detail": [body_error]}, status_code=422)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @api.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never leak a stack trace to the client; the log has it with the request id.
        _log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse({"detail": "Internal server error"}, status_code=500)
