"""Trading in headless Chromium: buy with the ticket, see the holding and P&L, a limit order fills live."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.support.helpers import STRONG_PASSWORD, user_payload

USERNAME = "tina_trader"


def _funded_user(app_url: str) -> dict[str, str]:
    assert httpx.post(f"{app_url}/api/v1/auth/register", json=user_payload(USERNAME)).status_code == 201
    token = httpx.post(f"{app_url}/api/v1/auth/login", json={"username": USERNAME, "password": STRONG_PASSWORD}).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{app_url}/api/v1/balance/deposit", headers=headers, json={"amount": "5000"}).status_code == 201
    return headers


def _login(page: Page, app_url: str, next_path: str) -> None:
    page.goto(f"{app_url}/login?next={next_path}")
    page.fill("#field-username", USERNAME)
    page.fill("#field-password", STRONG_PASSWORD)
    page.click("#login-submit")


def test_buy_then_portfolio_then_limit_fill(app_url: str, page: Page) -> None:
    headers = _funded_user(app_url)
    _login(page, app_url, "/trade")
    expect(page).to_have_url(re.compile(r"://[^/]+/trade/?$"), timeout=30_000)
    page.goto(f"{app_url}/trade?asset=ETH&side=buy")
    expect(page.locator("#ticket-asset")).to_have_value("ETH", timeout=30_000)
    expect(page.locator("#preview-cash")).to_have_text("$5,000.00")

    # A quantity below the minimum gets the API's message inline.
    page.fill("#ticket-quantity", "0.0001")
    page.click("#ticket-review")
    expect(page.locator("#ticket-error-quantity")).to_contain_text("at least 0.001", timeout=10_000)

    page.fill("#ticket-quantity", "0.5")
    expect(page.locator("#preview-total")).to_have_text(re.compile(r"^\$[\d,]+\.\d{2}$"))
    page.click("#ticket-review")
    expect(page.locator("#confirm-order-text")).to_contain_text("0.5 ETH")
    shot(page, "trade-confirm")
    page.click("#confirm-order")
    expect(page.get_by_text(re.compile(r"Bought 0\.5 ETH at \$"))).to_be_visible(timeout=20_000)

    api = httpx.get(f"{app_url}/api/v1/portfolio", headers=headers).json()
    eth = next(a for a in api["assets"] if a["asset_id"] == "ETH")
    assert Decimal(eth["quantity"]) == Decimal("0.5")

    page.goto(f"{app_url}/portfolio")
    expect(page.locator(".holding-row")).to_have_count(1, timeout=30_000)
    expect(page.locator(".holding-row").first).to_contain_text("0.5")
    expect(page.locator("#total-equity")).to_have_text(re.compile(r"^\$[\d,]+\.\d{2}$"))
    shot(page, "portfolio")

    # A limit buy above the market price rests, then fills at the next price refresh, without reload.
    price = Decimal(str(httpx.get(f"{app_url}/api/v1/inventory/assets/BTC").json()["data"]["price_usd"]))
    limit = (price * Decimal("1.10")).quantize(Decimal("0.01"))
    page.goto(f"{app_url}/trade?asset=BTC&side=buy")
    expect(page.locator("#ticket-asset")).to_have_value("BTC", timeout=30_000)
    page.get_by_role("radio", name="Limit").click()
    page.fill("#ticket-limit", str(limit))
    page.fill("#ticket-quantity", "0.001")
    page.click("#ticket-review")
    page.click("#confirm-order")
    expect(page.get_by_text(re.compile("Limit buy order placed"))).to_be_visible(timeout=20_000)
    page.evaluate("window.__cnop_marker = 'same page'")
    expect(page.locator("#fill-notice")).to_contain_text("filled", timeout=30_000)
    expect(page.locator("[data-sonner-toast]").filter(has_text="filled at")).to_be_visible()
    expect(page.locator("#orders-empty")).to_be_visible()
    assert page.evaluate("window.__cnop_marker") == "same page"
    orders = httpx.get(f"{app_url}/api/v1/orders?asset_id=BTC", headers=headers).json()["data"]
    assert orders[0]["status"] == "completed"
    shot(page, "trade-filled")

    page.goto(f"{app_url}/orders")
    expect(page.locator(".order-row")).to_have_count(2, timeout=30_000)
    page.goto(f"{app_url}/dashboard")
    expect(page.locator("#total-equity")).to_have_text(re.compile(r"^\$[\d,]+\.\d{2}$"), timeout=30_000)
    expect(page.locator(".order-row")).to_have_count(2)  # recent fills
    expect(page.locator(".mover-row").first).to_be_visible()
    shot(page, "dashboard")
