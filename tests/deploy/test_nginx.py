"""The proxy config (deploy/nginx): `nginx -t` on what proxy.sh renders, then the real nginx in front of two
fake backends and a fake export: routing, affinity, passive health checks, static files, SPA fallback."""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cnop_app.config import load_settings
from cnop_app.http_security import PERMISSIONS_POLICY, content_security_policy
from tests.deploy.support import (
    BACKEND_PATHS,
    PROXY,
    ROUTES,
    clean_env,
    nginx,
    run,
    tool,
    wait_http,
    world_readable_dir,
)
from tests.support.helpers import free_port

# Each backend path, as a browser or client would send it.
REQUESTS = sorted(BACKEND_PATHS - {"/api"}) + ["/api/v1/inventory/assets?limit=5", "/_event/?EIO=4&transport=websocket"]
STATIC_ROUTES = [route for route in ROUTES if "[" not in route and route != "/"]
DYNAMIC_ROUTES = [route for route in ROUTES if "[" in route]


def render_env(backends: str, static_root: Path, port: int, **extra: str) -> dict[str, str]:
    return clean_env(CNOP_BACKENDS=backends, CNOP_STATIC_ROOT=str(static_root), CNOP_PROXY_PORT=str(port), **extra)


# --- config checks -------------------------------------------------------------------------------------


def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    tool("nginx")
    env = render_env("127.0.0.1:3001,127.0.0.1:3002", tmp_path, free_port())
    result = run([str(PROXY), "check", str(tmp_path / "conf")], env=env)
    assert result.returncode == 0
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    upstreams = (tmp_path / "conf" / "upstreams.conf").read_text()
    assert upstreams.count("server 127.0.0.1:3002 max_fails=2 fail_timeout=10s;") == 2
    assert "${" not in (tmp_path / "conf" / "cnop.conf").read_text()


def test_tls_config_passes_nginx_t(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    env = render_env("127.0.0.1:3000", tmp_path, free_port(), CNOP_TLS_CERT=str(cert), CNOP_TLS_KEY=str(key))
    result = run([str(PROXY), "check", str(tmp_path / "conf")], env=env)
    assert result.returncode == 0
    assert "ssl" in (tmp_path / "conf" / "listen.conf").read_text()


@pytest.mark.parametrize("backends", ["app", "app:", ":3000", "app:30x0", "app:3000,,:1"])
def test_malformed_backends_are_refused(tmp_path: Path, backends: str) -> None:
    result = run([str(PROXY), "render", str(tmp_path / "conf")], env=render_env(backends, tmp_path, 8080))
    assert result.returncode == 2
    assert "CNOP_BACKENDS" in result.stderr


def test_tls_needs_both_files(tmp_path: Path) -> None:
    env = render_env("127.0.0.1:3000", tmp_path, 8080, CNOP_TLS_CERT="/x.pem")
    result = run([str(PROXY), "render", str(tmp_path / "conf")], env=env)
    assert result.returncode == 2


# --- the running proxy ---------------------------------------------------------------------------------


@dataclass
class FakeBackend:
    """An HTTP server that answers JSON naming itself and records what it saw."""

    name: str
    status: int = 200
    seen: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self.server
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                backend.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
                payload = json.dumps({"backend": backend.name, "path": self.path, "body": body.decode()}).encode()
                self.send_response(backend.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                # Headers of the backend's own (the app sends the same set): the proxy replaces them.
                self.send_header("Content-Security-Policy", "default-src *")
                self.send_header("X-Frame-Options", "SAMEORIGIN")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # nginx keeps idle upstream connections open
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        """Stop answering: new connections are refused (idempotent)."""
        if self.server and self.server.socket.fileno() != -1:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Stack:
    url: str
    a: FakeBackend
    b: FakeBackend
    static_root: Path
    plain_url: str


def fake_export(root: Path) -> None:
    """The shape of Reflex's export: per-route HTML (x.html and x/index.html), 404.html, hashed assets."""
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<html>INDEX</html>")
    (root / "404.html").write_text("<html>SPA-FALLBACK</html>")
    for route in STATIC_ROUTES:
        name = route.strip("/")
        (root / f"{name}.html").write_text(f"<html>PAGE {route}</html>")
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "index.html").write_text(f"<html>PAGE {route}/</html>")
    script = b"console.log('cnop');" * 200
    (root / "assets" / "app-3f2a1c.js").write_bytes(script)
    (root / "assets" / "app-3f2a1c.js.gz").write_bytes(gzip.compress(script))


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    result = run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-keyout", str(key), "-out", str(cert)]
    )
    assert result.returncode == 0
    return cert, key


@contextmanager
def nginx_stack(tls: bool = False) -> Iterator[Stack]:
    """nginx before two fake backends and a fake export."""
    with ExitStack() as stack:
        work = stack.enter_context(world_readable_dir("cnop-nginx-test-"))
        a, b = FakeBackend("a"), FakeBackend("b")
        for backend in (a, b):
            backend.start()
            stack.callback(backend.kill)
        static_root = work / "site"
        fake_export(static_root)
        port, tls_port = free_port(), free_port()
        extra = {}
        if tls:
            cert, key = self_signed(work)
            extra = {"CNOP_TLS_CERT": str(cert), "CNOP_TLS_KEY": str(key), "CNOP_TLS_PORT": str(tls_port)}
        env = render_env(f"{a.address} {b.address}", static_root, port, **extra)
        proc = stack.enter_context(nginx(work, env))
        url = f"https://127.0.0.1:{tls_port}" if tls else f"http://127.0.0.1:{port}"
        wait_http(f"{url}/index.html", proc, work / "nginx.log", timeout=20, verify=False)
        yield Stack(url, a, b, static_root, plain_url=f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Shared by the tests that only read; a test that breaks a backend takes `own_stack`."""
    with nginx_stack() as running:
        yield running


@pytest.fixture
def own_stack() -> Iterator[Stack]:
    with nginx_stack() as running:
        yield running


def backend_of(response: httpx.Response) -> str:
    return response.json()["backend"]


_client = httpx.Client(verify=False)


def request(method: str, url: str, cookies: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
    """One request on a shared connection, with exactly the cookies given (nothing kept from earlier answers)."""
    _client.cookies.clear()
    headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return _client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]


def get(url: str, **kwargs: object) -> httpx.Response:
    return request("GET", url, **kwargs)  # type: ignore[arg-type]


def post(url: str, **kwargs: object) -> httpx.Response:
    return request("POST", url, **kwargs)  # type: ignore[arg-type]


def test_backend_paths_reach_the_backends_unchanged(stack: Stack) -> None:
    for path in REQUESTS:
        response = get(stack.url + path)
        assert response.status_code == 200, path
        assert response.json()["path"] == path
    posted = post(stack.url + "/api/v1/orders", json={"quantity": "1"})
    assert posted.json()["body"] == '{"quantity":"1"}'


def test_metrics_is_refused_and_never_reaches_a_backend(stack: Stack) -> None:
    assert get(stack.url + "/metrics").status_code == 403
    assert not [seen for seen in stack.a.seen + stack.b.seen if seen["path"].startswith("/metrics")]


def test_api_requests_spread_over_both_backends(stack: Stack) -> None:
    served = {backend_of(get(stack.url + "/api/v1/market/status")) for _ in range(20)}
    assert served == {"a", "b"}


def test_websocket_requests_keep_their_backend_per_browser_cookie(stack: Stack) -> None:
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    chosen = {}
    for browser in range(30):
        cookies = {"cnop_route": f"browser-{browser}"}
        answers = {backend_of(get(stack.url + "/_event/?EIO=4", headers=upgrade, cookies=cookies)) for _ in range(3)}
        assert len(answers) == 1, f"browser {browser} moved between backends: {answers}"
        chosen[browser] = answers.pop()
    assert set(chosen.values()) == {"a", "b"}
    last = (stack.a.seen + stack.b.seen)[-1]["headers"]
    assert last["Upgrade"] == "websocket" and last["Connection"] == "upgrade"


def test_first_response_sets_the_affinity_cookie_once(stack: Stack) -> None:
    first = get(stack.url + "/")
    assert re.fullmatch(r"cnop_route=[0-9a-f]{32}; Path=/; HttpOnly; SameSite=Lax", first.headers["set-cookie"])
    again = get(stack.url + "/", cookies={"cnop_route": first.cookies["cnop_route"]})
    assert "set-cookie" not in again.headers


def test_client_supplied_forwarding_headers_are_replaced(stack: Stack) -> None:
    get(stack.url + "/api/v1/market/status", headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "1.2.3.4"})
    headers = (stack.a.seen + stack.b.seen)[-1]["headers"]
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Real-IP"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])


def test_a_dead_backend_is_skipped(own_stack: Stack) -> None:
    stack = own_stack
    stack.b.kill()
    for _ in range(10):
        assert backend_of(get(stack.url + "/api/v1/market/status")) == "a"
    # A refused connection means the request never reached b: even a POST is passed on.
    assert backend_of(post(stack.url + "/api/v1/orders", json={})) == "a"
    for browser in range(10):
        response = get(stack.url + "/_event/?EIO=4", cookies={"cnop_route": f"browser-{browser}"})
        assert backend_of(response) == "a"


def test_a_draining_backend_answering_503_is_skipped(own_stack: Stack) -> None:
    stack = own_stack
    stack.b.status = 503
    for _ in range(10):
        response = get(stack.url + "/health")
        assert response.status_code == 200
        assert backend_of(response) == "a"


def test_static_pages_and_the_spa_fallback(stack: Stack) -> None:
    home = get(stack.url + "/")
    assert home.status_code == 200 and "INDEX" in home.text
    assert home.headers["cache-control"] == "no-cache"
    assert home.headers["x-content-type-options"] == "nosniff"
    for route in STATIC_ROUTES:
        page = get(stack.url + route)
        assert page.status_code == 200 and f"PAGE {route}<" in page.text, route
        assert f"PAGE {route}/" in get(stack.url + route + "/").text
    # A dynamic route has no file of its own: Reflex's SPA fallback, with 200 like Reflex's own server.
    for route in DYNAMIC_ROUTES:
        concrete = re.sub(r"\[[^]]+\]", "bitcoin", route)
        page = get(stack.url + concrete)
        assert page.status_code == 200 and "SPA-FALLBACK" in page.text, concrete
    missing = get(stack.url + "/no-such-page")
    assert missing.status_code == 404 and "SPA-FALLBACK" in missing.text
    assert get(stack.url + "/404.html").status_code == 404


def test_assets_are_precompressed_and_cached_for_good(stack: Stack) -> None:
    response = get(stack.url + "/assets/app-3f2a1c.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["cache-control"].removeprefix("max-age=")) >= 365 * 24 * 3600
    assert response.text.startswith("console.log")
    assert get(stack.url + "/assets/missing.js").status_code == 404


def test_tls_serves_https_and_redirects_plain_http() -> None:
    with nginx_stack(tls=True) as tls:
        response = get(tls.url + "/api/v1/tls-probe")
        assert response.status_code == 200
        assert response.headers.get_list("strict-transport-security") == ["max-age=31536000"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        seen = [entry for entry in tls.a.seen + tls.b.seen if entry["path"] == "/api/v1/tls-probe"]
        assert seen[0]["headers"]["X-Forwarded-Proto"] == "https"
        redirect = get(tls.plain_url + "/market?x=1")
        assert redirect.status_code == 308
        assert redirect.headers["location"] == "https://127.0.0.1/market?x=1"


def csp_directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def test_security_headers_on_pages_and_proxied_answers(stack: Stack) -> None:
    answers = {path: get(stack.url + path) for path in ("/", "/market", "/market/btc", "/api/v1/market/status")}
    answers["/no-such-page"] = get(stack.url + "/no-such-page")
    for path, response in answers.items():
        headers = response.headers
        # One value each: the backend's own copies are dropped, not doubled.
        for name in ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"):
            assert len(headers.get_list(name)) == 1, (path, name, headers.get_list(name))
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["permissions-policy"] == PERMISSIONS_POLICY
        assert headers["cross-origin-opener-policy"] == "same-origin"
        policy = csp_directives(headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'none'"] and policy["img-src"] == ["'self'", "data:"], path
        assert "strict-transport-security" not in headers  # plain HTTP
    assert "cdn.jsdelivr.net" in get(stack.url + "/docs").headers["content-security-policy"]


def test_the_proxy_sends_the_apps_policy(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same directives as the app's own (cnop_app/http_security.py); the app also names its public URL in
    # connect-src, where behind the proxy the page's own origin ('self') is the public URL.
    monkeypatch.setenv("CNOP_DATA_DIR", str(tmp_path))
    app_policy = csp_directives(content_security_policy(load_settings()))
    proxy_policy = csp_directives(get(stack.url + "/").headers["content-security-policy"])
    assert proxy_policy.pop("connect-src") == ["'self'"]
    app_policy.pop("connect-src")
    assert proxy_policy == app_policy
