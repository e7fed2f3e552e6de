"""Pages as a new user sees them, at the widths where they broke: /profile without empty error boxes,
the dashboard's recent fills whole at 1366 px (and the watchlist filled by a star on the market page),
the account reset's confirmation, and the market table on a 375 px phone. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.support.helpers import STRONG_PASSWORD, user_payload

USERNAME = "quinn_fixes"
BOUGHT = ("BTC", "ETH", "SOL")
TIMEOUT_MS = 30_000
MONEY = re.compile(r"^\$[\d,]+\.\d{2}$")


def _user_with_fills(app_url: str) -> None:
    assert httpx.post(f"{app_url}/api/v1/auth/register", json=user_payload(USERNAME)).status_code == 201
    login = {"username": USERNAME, "password": STRONG_PASSWORD}
    token = httpx.post(f"{app_url}/api/v1/auth/login", json=login).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{app_url}/api/v1/balance/deposit", headers=headers, json={"amount": "9000"}).status_code == 201
    for asset_id in BOUGHT:
        order = {"order_type": "market_buy", "asset_id": asset_id, "quantity": "0.01"}
        response = httpx.post(f"{app_url}/api/v1/orders", headers=headers, json=order)
        assert response.status_code == 201, response.text


def _shot(page: Page, name: str, full_page: bool = True) -> None:
    page.mouse.move(0, 0)
    page.wait_for_timeout(600)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page, animations="disabled")


def _log_in(page: Page, app_url: str, next_path: str) -> None:
    page.goto(f"{app_url}/login?next={next_path}")
    page.fill("#field-username", USERNAME)
    page.fill("#field-password", STRONG_PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(rf"://[^/]+{next_path}/?$"), timeout=TIMEOUT_MS)


def _inside(inner: dict | None, outer: dict | None) -> bool:
    assert inner is not None and outer is not None
    return inner["x"] >= outer["x"] - 0.5 and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5


def test_profile_dashboard_account_at_1366_and_the_market_on_a_phone(app_url: str, browser: Browser) -> None:
    _user_with_fills(app_url)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        _log_in(page, app_url, "/profile")
        expect(page.locator("#profile-save")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator("[role=alert]")).to_have_count(0)  # no empty error boxes on a plain load
        _shot(page, "profile")

        # A star on the market table puts the asset on the dashboard's watchlist.
        page.goto(f"{app_url}/market")
        expect(page.locator("#star-ETH")).to_be_visible(timeout=TIMEOUT_MS)
        page.click("#star-ETH")
        expect(page.get_by_text("ETH added to your watchlist")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator("#star-ETH")).to_have_attribute("aria-pressed", "true")

        page.goto(f"{app_url}/dashboard")
        fills = page.locator(".order-row")
        expect(fills).to_have_count(len(BOUGHT), timeout=TIMEOUT_MS)
        expect(page.locator(".watch-row")).to_have_count(1)
        expect(page.locator("#watch-price-ETH")).to_have_text(MONEY)
        # Every column of the fills table, Status included, is inside its card: nothing cut off.
        card = page.locator(".order-row").first.locator("xpath=ancestor::div[contains(@class,'rt-Card')][1]")
        for status in page.locator(".order-status").all():
            expect(status).to_be_visible()
            assert _inside(status.bounding_box(), card.bounding_box())
        _shot(page, "dashboard-1366")

        page.goto(f"{app_url}/account")
        page.fill("#reset-starting-cash", "25000")
        page.click("#reset-review")
        expect(page.locator("#reset-confirm-text")).to_contain_text("$25,000.00", timeout=TIMEOUT_MS)
        expect(page.locator("#reset-confirm-text")).to_contain_text(
            "0 open orders will be cancelled and 3 holdings sold"
        )
        _shot(page, "account-reset-confirm", full_page=False)
        page.get_by_role("button", name="Keep my account").click()
        expect(page.locator("#reset-confirm-text")).to_be_hidden()
    finally:
        context.close()

    phone = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        page.goto(f"{app_url}/market")
        expect(page.locator(".market-row").first).to_contain_text("Bitcoin", timeout=TIMEOUT_MS)
        _shot(page, "market-375")
        viewport = {"x": 0, "width": 375}
        price = page.locator("#price-BTC")
        expect(price).to_have_text(MONEY)
        assert _inside(price.bounding_box(), viewport), price.bounding_box()
        change = page.locator(".market-row").first.locator("td").nth(4)
        assert _inside(change.bounding_box(), viewport), change.bounding_box()
    finally:
        phone.close()
