"""`/market` in Chromium (Debian's, driven by Playwright as in tests/browser): time to first rows visible.

One cold visit first (it also records the browser's websocket handshake for bench/fanout.py), then
`visits` warm ones: a new tab of the same browser context each (HTTP cache warm, new session token),
timed from `page.goto` until the first market row ("Bitcoin") is visible.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Page, WebSocket, sync_playwright

from bench.common import Row
from tests.support.app_server import CHROMIUM, CHROMIUM_ARGS

FIRST_ROW = "Bitcoin"


@dataclass
class Handshake:
    """What the browser sent on `/_event`: the websocket URL and the socket.io CONNECT packet (hydrate)."""

    url: str = ""
    connect: str = ""
    received: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "connect": self.connect}


def _visit(page: Page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.get_by_text(FIRST_ROW, exact=True).first.wait_for(state="visible", timeout=60_000)
    return time.perf_counter() - started


def market_first_rows(base: str, visits: int) -> tuple[float, list[float], Handshake]:
    """(cold seconds, warm seconds per visit, the cold visit's handshake)."""
    handshake = Handshake()

    def on_websocket(ws: WebSocket) -> None:
        if "/_event" not in ws.url or handshake.url:
            return
        handshake.url = ws.url

        def sent(payload: str | bytes) -> None:
            if isinstance(payload, str) and payload.startswith("40") and not handshake.connect:
                handshake.connect = payload

        def received(payload: str | bytes) -> None:
            if isinstance(payload, str) and len(handshake.received) < 20:
                handshake.received.append(payload)

        ws.on("framesent", sent)
        ws.on("framereceived", received)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.on("websocket", on_websocket)
            cold = _visit(page, f"{base}/market")
            page.wait_for_timeout(500)  # let the handshake's frames be recorded
            page.close()
            warm = []
            for _ in range(visits):
                page = context.new_page()
                warm.append(_visit(page, f"{base}/market"))
                page.close()
            context.close()
        finally:
            browser.close()
    if not handshake.connect:
        raise RuntimeError("the browser sent no socket.io CONNECT packet on /_event")
    return cold, warm, handshake


def browser_row(cold: float, warm: list[float]) -> Row:
    median = statistics.median(warm)
    return Row(
        "`/market` in Chromium, warm: first rows visible",
        f"median {median * 1000:.0f} ms (max {max(warm) * 1000:.0f} ms, {len(warm)} visits)",
        "≤ 1 s on loopback",
        median <= 1.0,
        notes=[f"cold first visit (new browser, empty cache): {cold * 1000:.0f} ms"],
    )
