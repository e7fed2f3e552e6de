"""ASGI middleware: request ids, the API's request guard (rate limits), body size limit, access logs
and HTTP metrics.

Pure ASGI (not BaseHTTPMiddleware) so websockets pass through untouched and the hot path stays cheap.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from cnop_app.observability.logging import get_logger, new_request_id, request_id_var
from cnop_app.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = get_logger("http")

# Observers told about each finished API request: method, route, status, duration in whole microseconds
# (the activity monitor registers here).
RequestObserver = Callable[[str, str, int, int], None]
_observers: list[RequestObserver] = []


def add_request_observer(observer: RequestObserver) -> None:
    if observer not in _observers:
        _observers.append(observer)


class _BodyTooLarge(Exception):
    pass


@dataclass
class Admission:
    """A guard's answer: headers for the response, and a 429 JSON body when the request is refused."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    refusal: bytes | None = None


# Consulted before each API request (the rate limits); None lets the request through untouched.
RequestGuard = Callable[[Scope, dict[str, str]], Awaitable[Admission | None]]


def route_label(scope: Scope, full_paths: Mapping[int, str] | None = None) -> str:
    """The matched route template, or a fixed bucket: labels stay bounded whatever the path.

    FastAPI's router puts the route it matched in `scope["route"]`; a route of an included router
    knows only its own part of the path (`/balance`, not `/api/v1/balance`): `full_paths` maps each
    route, by identity, to its whole template."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return full_paths.get(id(route), path) if full_paths else path
    raw = scope.get("path", "")
    if raw.startswith("/api/"):
        return "/api/unmatched"
    if raw.startswith("/_event"):
        return "/_event"
    return "frontend"


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = 65536,
        guard: RequestGuard | None = None,
        full_paths: Mapping[int, str] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.guard = guard
        self.full_paths = full_paths
        self._kept_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status_holder = {"status": 500, "started": False}
        path = scope.get("path", "")
        is_api = path.startswith("/api/") or path in ("/health", "/metrics")
        admission: Admission | None = None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                if is_api:
                    hdrs = list(message.get("headers", []))
                    hdrs.append((b"x-request-id", request_id.encode()))
                    if admission is not None:
                        hdrs.extend(admission.headers)
                    message["headers"] = hdrs
            await send(message)

        try:
            if is_api and self.guard is not None:
                admission = await self.guard(scope, headers)
                if admission is not None and admission.refusal is not None:
                    await self._send_json(send_wrapper, 429, admission.refusal)
                    return
            length = headers.get("content-length")
            if is_api and length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await self._too_large(send_wrapper)
                return
            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if is_api and received > self.max_body_bytes:
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, receive_wrapper, send_wrapper)
            except _BodyTooLarge:
                if not status_holder["started"]:
                    await self._too_large(send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            if is_api:
                label = route_label(scope, self.full_paths)
                method = scope.get("method", "GET")
                status = int(status_holder["status"])
                requests, latency = self._series(method, label, status)
                requests.inc()
                latency.observe(elapsed)
                micros = round(elapsed * 1_000_000)
                for observer in _observers:
                    observer(method, label, status, micros)
                _log.info(
                    "request",
                    extra={"method": method, "route": label, "status": status, "ms": round(elapsed * 1000, 2)},
                )
            request_id_var.reset(token)

    def _series(self, method: str, label: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of this method, route and status class. Kept per
        key: `labels()` checks its arguments and takes a lock on every call. Any method outside HTTP's
        usual ones is labelled `other`, so a client inventing methods cannot add series."""
        key = (method if method in _METRIC_METHODS else "other", label, f"{status // 100}xx")
        series = self._kept_series.get(key)
        if series is None:
            series = self._kept_series[key] = (HTTP_REQUESTS.labels(*key), HTTP_LATENCY.labels(*key[:2]))
        return series

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"detail": f"Request body too large (limit {self.max_body_bytes} bytes)"}).encode()
        await self._send_json(send, 413, body)

    @staticmethod
    async def _send_json(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
