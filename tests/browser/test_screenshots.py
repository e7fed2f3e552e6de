"""Screenshots of the market, trade, portfolio and dashboard pages in light and dark mode, with real data.

Always written to test-artifacts/; with CNOP_DOCS_SCREENSHOTS=1 (`make screenshots`) also to docs/img/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from cnop_app.theme import RADIX_SCALES, THEME_COLOURS
from tests.browser.conftest import ARTIFACTS
from tests.support.helpers import STRONG_PASSWORD, user_payload

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
USERNAME = "sam_screens"
VIEWPORT = {"width": 1280, "height": 800}
MONEY = re.compile(r"^\$[\d,]+\.\d{2}$")
SPEND_PER_ASSET = Decimal("2500")
BOUGHT = ("BTC", "ETH", "SOL")
TIMEOUT_MS = 30_000


def _portfolio_user(app_url: str) -> None:
    """Register and fund a user, buy three assets and leave a limit buy resting far below the market."""
    assert httpx.post(f"{app_url}/api/v1/auth/register", json=user_payload(USERNAME)).status_code == 201
    login = {"username": USERNAME, "password": STRONG_PASSWORD}
    token = httpx.post(f"{app_url}/api/v1/auth/login", json=login).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{app_url}/api/v1/balance/deposit", headers=headers, json={"amount": "10000"}).status_code == 201
    prices: dict[str, Decimal] = {}
    for asset_id in BOUGHT:
        detail = httpx.get(f"{app_url}/api/v1/inventory/assets/{asset_id}").json()["data"]
        prices[asset_id] = Decimal(str(detail["price_usd"]))
        quantity = (SPEND_PER_ASSET / prices[asset_id]).quantize(Decimal("0.001"))
        order = {"order_type": "market_buy", "asset_id": asset_id, "quantity": str(quantity)}
        response = httpx.post(f"{app_url}/api/v1/orders", headers=headers, json=order)
        assert response.status_code == 201, response.text
    limit = {
        "order_type": "limit_buy",
        "asset_id": BOUGHT[0],
        "quantity": "0.01",
        "price": str((prices[BOUGHT[0]] / 2).quantize(Decimal("0.01"))),
    }
    response = httpx.post(f"{app_url}/api/v1/orders", headers=headers, json=limit)
    assert response.status_code == 201, response.text


def _market(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/market")
    expect(page.locator(".market-row").first).to_contain_text("Bitcoin", timeout=TIMEOUT_MS)
    expect(page.locator(f"#price-{BOUGHT[0]}")).to_have_text(MONEY)
    expect(page.locator("#market-status")).to_contain_text("simulated")


def _trade(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/trade?asset={BOUGHT[0]}&side=buy")
    expect(page.locator("#ticket-asset")).to_have_value(BOUGHT[0], timeout=TIMEOUT_MS)
    expect(page.locator("#preview-cash")).to_have_text(MONEY)
    expect(page.locator(".order-row")).to_have_count(1, timeout=TIMEOUT_MS)  # the resting limit buy
    page.fill("#ticket-quantity", "0.01")
    expect(page.locator("#preview-total")).to_have_text(MONEY)
    page.locator("#ticket-quantity").blur()


def _portfolio(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/portfolio")
    expect(page.locator(".holding-row")).to_have_count(len(BOUGHT), timeout=TIMEOUT_MS)
    expect(page.locator("#total-equity")).to_have_text(MONEY)
    expect(page.locator(".recharts-pie-sector").first).to_be_visible()


def _dashboard(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/dashboard")
    expect(page.locator("#total-equity")).to_have_text(MONEY, timeout=TIMEOUT_MS)
    expect(page.locator(".order-row")).to_have_count(len(BOUGHT))  # recent fills
    expect(page.locator(".mover-row").first).to_be_visible()


PAGES: dict[str, Callable[[Page, str], None]] = {
    "market": _market,
    "trade": _trade,
    "portfolio": _portfolio,
    "dashboard": _dashboard,
}


def _background_luminance(page: Page) -> float:
    """Relative luminance (0 black .. 1 white) of the themed page background."""
    rgb = page.evaluate(
        "() => getComputedStyle(document.querySelector('.radix-themes') || document.body).backgroundColor"
    )
    red, green, blue = (int(c) for c in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def _capture(page: Page, name: str, mode: str) -> None:
    expect(page.locator("html")).to_have_class(re.compile(rf"\b{mode}\b"))
    luminance = _background_luminance(page)
    assert (luminance < 0.3) if mode == "dark" else (luminance > 0.8), (mode, luminance)
    page.mouse.move(0, VIEWPORT["height"] - 1)  # no hover highlight in the picture
    page.evaluate("() => document.fonts.ready")
    page.wait_for_timeout(800)  # let charts finish drawing
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}-{mode}.png"
    # Finite animations (a changed price's flash) are run to their end: no half-flashed cells.
    page.screenshot(path=str(path), full_page=False, animations="disabled")
    if os.environ.get("CNOP_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / path.name)


def test_light_and_dark_screenshots_of_the_main_pages(app_url: str, browser: Browser) -> None:
    _portfolio_user(app_url)
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    try:
        page = context.new_page()
        page.goto(f"{app_url}/login?next=/market")
        page.fill("#field-username", USERNAME)
        page.fill("#field-password", STRONG_PASSWORD)
        page.click("#login-submit")
        expect(page).to_have_url(re.compile(r"://[^/]+/market/?$"), timeout=TIMEOUT_MS)
        for name, show in PAGES.items():
            show(page, app_url)
            _capture(page, name, "light")
        # The top-bar switch turns dark mode on; the choice is remembered across pages.
        page.get_by_role("button", name="Switch light or dark theme").click()
        expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
        for name, show in PAGES.items():
            show(page, app_url)
            _capture(page, name, "dark")
    finally:
        context.close()


def test_the_page_carries_the_colour_scales_the_app_uses_and_no_others(app_url: str, browser: Browser) -> None:
    # The built stylesheet is Radix's in parts (cnop_app/theme.py): each listed scale defines its
    # variables, in light and dark mode, and the other scales are not downloaded at all.
    for mode in ("light", "dark"):
        context = browser.new_context(viewport=VIEWPORT, color_scheme=mode)
        try:
            page = context.new_page()
            page.goto(f"{app_url}/login")
            expect(page.locator("html")).to_have_class(re.compile(rf"\b{mode}\b"))
            defined = page.evaluate(
                "(names) => names.filter(n => getComputedStyle(document.body).getPropertyValue(`--${n}-9`).trim())",
                sorted(RADIX_SCALES),
            )
        finally:
            context.close()
        assert sorted(defined) == sorted(THEME_COLOURS), mode
