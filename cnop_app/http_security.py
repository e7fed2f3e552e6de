"""Security headers on every HTTP response of the app, and the audit client of every request.

`wrap` is an `api_transformer` of the Reflex app: it wraps the whole ASGI app (pages, websocket, REST
API), so the headers are on the pages that `make run` serves too. deploy/nginx/cnop.conf sends the
same policy for the exported pages it serves itself (see docs/security.md).

The Content-Security-Policy is what Reflex's pages work under: scripts only from this origin, plus
the inline bootstrap scripts of the built pages and `eval` (Reflex runs the JavaScript of server
events, toasts included, through `eval`); styles inline (Emotion and Radix); images, fonts and
connections only to this origin (and `data:` images), so a page makes no third-party request; no
framing, plugins, foreign form targets or <base> tricks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from reflex.middleware import Middleware

from cnop_app.config import Settings, get_settings
from cnop_app.domain.network import client_ip
from cnop_app.observability.logging import new_request_id, request_id_var
from cnop_app.services import audit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HSTS = "max-age=31536000"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"
)
# FastAPI's Swagger UI loads its script and styles from a CDN: that page alone may (API docs, not the app).
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")
DOCS_CDN = "https://cdn.jsdelivr.net"


def _websocket_origins(origins: list[str]) -> list[str]:
    return [origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1) for origin in origins]


def content_security_policy(settings: Settings, *, docs: bool = False) -> str:
    # The browser reaches the backend at CNOP_PUBLIC_URL (and its loopback twins): the websocket and
    # fetches go there even when the page was opened by another name of the same host.
    # CSP host sources cannot name IPv6 literals ([::1]): those are left out (browsers drop them with an error).
    origins = [origin for origin in settings.cors_origins if "[" not in origin]
    script = "'self' 'unsafe-inline' 'unsafe-eval'" + (f" {DOCS_CDN}" if docs else "")
    style = "'self' 'unsafe-inline'" + (f" {DOCS_CDN}" if docs else "")
    directives = [
        "default-src 'self'",
        f"script-src {script}",
        f"style-src {style}",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src " + " ".join(["'self'", *origins, *_websocket_origins(origins)]),
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def security_headers(settings: Settings, *, docs: bool = False) -> list[tuple[bytes, bytes]]:
    """The headers added to every response (a response that sets one itself keeps its own)."""
    headers = {
        "content-security-policy": content_security_policy(settings, docs=docs),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "same-origin",
        "permissions-policy": PERMISSIONS_POLICY,
        "cross-origin-opener-policy": "same-origin",
    }
    if settings.public_url.lower().startswith("https://"):
        headers["strict-transport-security"] = HSTS
    return [(name.encode(), value.encode()) for name, value in headers.items()]


class SecurityMiddleware:
    """Pure ASGI: adds the security headers to HTTP responses and binds the audit client (IP by the
    app's one rule, user agent) of every request and websocket; a websocket also gets a request id
    of its own, so the audit rows and log lines of its events can be traced to it."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        self.app = app
        self.settings = settings or get_settings()
        self.headers = security_headers(self.settings)
        self.docs_headers = security_headers(self.settings, docs=True)
        # The built JavaScript and CSS under /assets/ have a content hash in their names: browsers may
        # keep them for good, as behind deploy/nginx, instead of revalidating every module on each visit.
        self.immutable = [*self.headers, (b"cache-control", b"public, max-age=31536000, immutable")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = scope.get("headers", ())
        forwarded = b",".join(value for name, value in raw if name == b"x-forwarded-for").decode("latin-1") or None
        user_agent = next((value.decode("latin-1") for name, value in raw if name == b"user-agent"), None)
        peer = scope.get("client")
        ip = client_ip(peer[0] if peer else None, forwarded, self.settings.trusted_networks)
        client_token = audit.bind_client(ip, user_agent)
        request_token = request_id_var.set(new_request_id()) if scope["type"] == "websocket" else None
        path = scope.get("path", "")
        extra = self.docs_headers if path in DOCS_PATHS else self.headers
        hashed = path.startswith("/assets/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                # Not a 404: during a rolling deploy an old instance may not have a new file yet.
                found = hashed and message["status"] in (200, 304)
                headers.extend(
                    (name, value) for name, value in (self.immutable if found else extra) if name not in present
                )
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)
        finally:
            if request_token is not None:
                request_id_var.reset(request_token)
            audit.unbind_client(client_token)


class AuditClientMiddleware(Middleware):
    """Reflex event middleware: each UI event's audit rows name its client (IP by the app's one rule,
    user agent of the websocket handshake) and a request id of its own. Reflex runs events in a task of
    its own, so the websocket's ASGI context does not reach them; this runs in the event's task."""

    # Plain def: Reflex awaits the result only when it is awaitable, and nothing here waits.
    def preprocess(self, app: Any, state: Any, event: Any) -> None:  # type: ignore[override]
        router = state.router
        headers = router.headers.raw_headers
        peer = headers.get("asgi-scope-client") or router.session.client_ip or None
        ip = client_ip(peer, headers.get("x-forwarded-for"), get_settings().trusted_networks)
        audit.bind_client(ip, router.headers.user_agent or None)
        request_id_var.set(new_request_id())
        return None


def wrap(app: ASGIApp) -> ASGIApp:
    """The api_transformer: the whole app behind `SecurityMiddleware`."""
    return SecurityMiddleware(app)
