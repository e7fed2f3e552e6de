"""The Content-Security-Policy in Chromium (A7): every page, signed out and signed in, works under it with
no violation, no console error and no request to any other origin; coin logos come from CNOP.

Its own app on a fake CoinGecko feed that serves the coin logos, so the logo cache runs end to end."""

from __future__ import annotations

import re
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

from cnop_app.api.session_cookie import COOKIE_URL
from tests.browser.conftest import shot
from tests.deploy.support import ROUTES
from tests.support.app_server import running_app
from tests.support.coingecko_server import FakeCoinGecko
from tests.support.helpers import STRONG_PASSWORD, free_port, user_payload

USERNAME = "csp_tester"
WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\x60\xc0" * 16 for _ in range(16))
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@dataclass
class Watch:
    """What the browser reported while visiting the pages."""

    origins: set[str]
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} @ {message.location.get('url')}")

    def on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc not in self.origins:
            self.foreign.append(request.url)

    def collect(self, page: Page) -> None:
        self.violations += page.evaluate("window.__cspViolations || []")


@pytest.fixture(scope="module")
def feed() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko() as server:
        for coin in server.coins:
            coin["image"] = server.serve_file(f"/images/{coin['id']}.png", png(), "image/png")
        yield server


@dataclass
class App:
    url: str
    data_dir: Path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, feed: FakeCoinGecko) -> Iterator[App]:
    data_dir = tmp_path_factory.mktemp("csp-app")
    settings = {
        "CNOP_MARKET_SOURCE": "coingecko",
        "CNOP_COINGECKO_BASE_URL": feed.base_url,
        "CNOP_REFRESH_ACTIVE_SECONDS": "3",
        "CNOP_REFRESH_IDLE_SECONDS": "3",
    }
    with running_app(data_dir, free_port(), settings) as url:
        yield App(url, data_dir)


def concrete(route: str) -> str:
    return re.sub(r"\[[^]]+\]", "BTC", route)


def visit_every_page(page: Page, base: str, watch: Watch, signed_in: bool) -> None:
    for route in ROUTES:
        response = page.goto(base + concrete(route))
        assert response is not None and response.ok, route
        policy = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy and "img-src 'self' data:" in policy, route
        assert response.headers.get("x-content-type-options") == "nosniff", route
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)  # let live pushes and lazy images arrive
        if signed_in and route not in ("/login", "/register"):
            expect(page.locator("#nav-username")).to_be_visible(timeout=20_000)
        watch.collect(page)


def test_every_page_works_under_the_policy_signed_out_and_in(app: App, browser: Browser) -> None:
    csp_app = app.url
    origin = urlsplit(csp_app).netloc
    port = urlsplit(csp_app).port
    watch = Watch(origins={origin, f"localhost:{port}", f"[::1]:{port}"})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("request", watch.on_request)
    try:
        # The logos are copied from the feed after the first refreshes: the market shows CNOP's copies.
        page.goto(csp_app + "/market")
        logos = page.locator("img[src*='/api/v1/inventory/assets/']")
        expect(logos.first).to_be_visible(timeout=60_000)
        page.reload()
        expect(logos.first).to_be_visible(timeout=30_000)
        assert page.evaluate("[...document.images].every((img) => img.complete && img.naturalWidth > 0)")
        assert not page.locator("img[src^='http']").count()
        shot(page, "market-logos")

        visit_every_page(page, csp_app, watch, signed_in=False)

        register = httpx.post(f"{csp_app}/api/v1/auth/register", json=user_payload(USERNAME), timeout=30)
        assert register.status_code == 201, register.text
        page.goto(csp_app + "/login")
        page.fill("#field-username", USERNAME)
        page.fill("#field-password", STRONG_PASSWORD)
        # The page posts its cookie claim as the username shows; a page.goto before that answer came
        # would abort it, and every later page would load signed out.
        with page.expect_response(lambda r: r.url.endswith(COOKIE_URL) and r.request.method == "POST"):
            page.click("#login-submit")
        expect(page.locator("#nav-username")).to_be_visible(timeout=30_000)
        visit_every_page(page, csp_app, watch, signed_in=True)
    finally:
        watch.collect(page) if not page.is_closed() else None
        context.close()
    assert watch.violations == []
    assert watch.errors == []
    assert watch.foreign == []


def test_a_ui_login_is_audited_with_its_client_and_request_id(app: App) -> None:
    # Runs after the test above signed in through the login form (over the websocket).
    with sqlite3.connect(app.data_dir / "cnop.db") as db:
        rows = db.execute(
            "SELECT ip, user_agent, request_id FROM audit_events WHERE event_type = 'login_ok' AND username = ?",
            (USERNAME,),
        ).fetchall()
    assert rows, "no login_ok row"
    ip, user_agent, request_id = rows[-1]
    assert ip == "127.0.0.1"
    assert "Chrome" in (user_agent or "")
    assert request_id
