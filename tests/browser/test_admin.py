"""The admin console in headless Chromium, as an operator uses it: disable a user whose browser is open
(that tab is signed out), adjust cash, turn trading in an asset off and on, cancel an order, and find
every action in the audit log (and its CSV). A screenshot of every admin page goes to test-artifacts/."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN_USERNAME, ARTIFACTS, expect_toast_shown, record_toasts
from tests.support.helpers import STRONG_PASSWORD, user_payload

CUSTOMER = "pat_console"
TOGGLED = "DOGE"  # no other browser test trades it
TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 900}


def _customer(app_url: str) -> str:
    """A funded customer holding BTC with a limit buy resting far below the market; returns its order id."""
    assert httpx.post(f"{app_url}/api/v1/auth/register", json=user_payload(CUSTOMER)).status_code == 201
    login = {"username": CUSTOMER, "password": STRONG_PASSWORD}
    token = httpx.post(f"{app_url}/api/v1/auth/login", json=login).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{app_url}/api/v1/balance/deposit", headers=headers, json={"amount": "5000"}).status_code == 201
    buy = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.01"}
    assert httpx.post(f"{app_url}/api/v1/orders", headers=headers, json=buy).status_code == 201
    price = Decimal(str(httpx.get(f"{app_url}/api/v1/inventory/assets/BTC").json()["data"]["price_usd"]))
    limit = {"order_type": "limit_buy", "asset_id": "BTC", "quantity": "0.01", "price": str((price / 2).quantize(1))}
    response = httpx.post(f"{app_url}/api/v1/orders", headers=headers, json=limit)
    assert response.status_code == 201, response.text
    return response.json()["data"]["order_id"]


def _log_in(page: Page, app_url: str, username: str, next_path: str) -> None:
    page.goto(f"{app_url}/login?next={next_path}")
    page.fill("#field-username", username)
    page.fill("#field-password", STRONG_PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(rf"://[^/]+{re.escape(next_path)}/?$"), timeout=TIMEOUT_MS)


def _shot(page: Page, name: str) -> None:
    page.mouse.move(0, VIEWPORT["height"] - 1)  # no hover highlight in the picture
    page.wait_for_timeout(600)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")


def _confirm(page: Page, reason: str, shot_name: str = "") -> None:
    """Fill the confirmation dialog's reason and confirm; the dialog closes on success."""
    expect(page.locator("#action-reason")).to_be_visible(timeout=10_000)
    page.fill("#action-reason", reason)
    if shot_name:
        page.wait_for_timeout(400)  # the dialog's opening animation
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{shot_name}.png"), animations="disabled")
    page.click("#action-confirm")
    expect(page.locator("#action-reason")).to_be_hidden(timeout=TIMEOUT_MS)


def _admin_pages(page: Page) -> None:
    # Overview: live figures, the feed and the integrity check.
    expect(page.locator("#ov-users")).to_have_text(re.compile(r"^\d+$"), timeout=TIMEOUT_MS)
    expect(page.locator("#ov-integrity")).to_contain_text("OK")
    expect(page.locator("#ov-feed-label")).to_have_text("live")
    first = page.locator("#ov-generated").inner_text()
    expect(page.locator("#ov-generated")).not_to_have_text(first, timeout=TIMEOUT_MS)  # it updates by itself
    _shot(page, "admin-overview")

    # Users: search, then the user's page.
    page.click("#admin-tab-users")
    expect(page.locator(".admin-user-row").first).to_be_visible(timeout=TIMEOUT_MS)
    page.fill("#admin-user-search", "pat_con")
    expect(page.locator(".admin-user-row")).to_have_count(1, timeout=TIMEOUT_MS)
    _shot(page, "admin-users")
    page.get_by_role("link", name=CUSTOMER).click()
    expect(page.locator("#admin-user-heading")).to_contain_text(CUSTOMER, timeout=TIMEOUT_MS)
    expect(page.locator(".admin-holding-row")).to_have_count(1)
    expect(page.locator(".admin-session-row")).to_have_count(2)  # the API login and the browser
    cash_before = Decimal(page.locator("#admin-user-cash").inner_text().strip("$").replace(",", ""))

    # Cash adjustment: a reason is required; the new cash shows at once.
    page.click("#action-adjust")
    page.fill("#action-amount", "123.45")
    _confirm(page, "Contest prize, ticket 42", "admin-user-adjust-dialog")
    expected = f"${cash_before + Decimal('123.45'):,.2f}"
    expect(page.locator("#admin-user-cash")).to_have_text(expected, timeout=TIMEOUT_MS)
    _shot(page, "admin-user")


def test_admin_disables_an_open_browser_adjusts_cash_toggles_an_asset_and_sees_the_audit(
    app_url: str, browser: Browser
) -> None:
    _customer(app_url)
    customer_context = browser.new_context(viewport=VIEWPORT)
    record_toasts(customer_context)
    admin_context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    try:
        victim = customer_context.new_page()
        _log_in(victim, app_url, CUSTOMER, "/portfolio")
        expect(victim.locator("#nav-username")).to_be_visible(timeout=TIMEOUT_MS)
        # A customer is kept out of the console.
        victim.goto(f"{app_url}/admin/users")
        expect(victim).to_have_url(re.compile(r"/dashboard/?$"), timeout=TIMEOUT_MS)
        expect(victim.get_by_text("The admin console is for admins only")).to_be_visible(timeout=TIMEOUT_MS)
        victim.goto(f"{app_url}/portfolio")
        expect(victim.locator("#total-equity")).to_be_visible(timeout=TIMEOUT_MS)

        page = admin_context.new_page()
        _log_in(page, app_url, ADMIN_USERNAME, "/admin")
        _admin_pages(page)

        # Disable: every session of the user ends; their open tab is signed out at its next push.
        page.click("#action-disable")
        expect(page.locator("#action-description")).to_contain_text("signed out at once")
        _confirm(page, "Abuse report 7")
        expect(page.locator("#admin-user-status")).to_have_text("disabled", timeout=TIMEOUT_MS)
        expect(page.locator("#admin-no-sessions")).to_be_visible()
        _shot(page, "admin-user-disabled")
        expect_toast_shown(victim, "Your session ended; please log in again", TIMEOUT_MS)
        expect(victim).to_have_url(re.compile(r"/login\?next="), timeout=TIMEOUT_MS)

        # Assets: trading off (with what happens to open orders said on the page), then on again.
        page.click("#admin-tab-assets")
        expect(page.locator("#inactive-rule")).to_contain_text("open limit orders stay pending", timeout=TIMEOUT_MS)
        page.click(f"#toggle-{TOGGLED}")
        _confirm(page, "Delisting review")
        expect(page.locator(f"#trading-{TOGGLED}")).to_have_text("off", timeout=TIMEOUT_MS)
        _shot(page, "admin-assets")
        page.click(f"#toggle-{TOGGLED}")
        _confirm(page, "Review done")
        expect(page.locator(f"#trading-{TOGGLED}")).to_have_text("on", timeout=TIMEOUT_MS)

        # Orders: the user's resting limit buy, cancelled on their behalf.
        page.click("#admin-tab-orders")
        page.fill("#filter-user", CUSTOMER)
        page.select_option("#filter-status", "pending")
        page.click("#filters-apply")
        expect(page.locator(".admin-order-row")).to_have_count(1, timeout=TIMEOUT_MS)
        _shot(page, "admin-orders")
        page.locator(".admin-order-row").get_by_role("button", name="Cancel this order on the user's behalf").click()
        _confirm(page, "Asked by email")
        expect(page.locator("#admin-orders-empty")).to_be_visible(timeout=TIMEOUT_MS)

        # Audit: every action above, by this admin, with its reason; the CSV holds them too.
        page.click("#admin-tab-audit")
        rows = page.locator(".audit-row")
        expect(rows.first).to_be_visible(timeout=TIMEOUT_MS)
        for event, reason in (
            ("admin_cash_adjusted", "Contest prize, ticket 42"),
            ("admin_user_disabled", "Abuse report 7"),
            ("admin_asset_disabled", "Delisting review"),
            ("admin_asset_enabled", "Review done"),
            ("admin_order_cancelled", "Asked by email"),
        ):
            expect(rows.filter(has_text=event).filter(has_text=reason)).to_have_count(1)
        _shot(page, "admin-audit")
        page.fill("#filter-actor", ADMIN_USERNAME)
        page.click("#filters-apply")
        # Wait for the filtered page itself (every row by this admin), not for something that was true
        # before the filter applied: the total below must be the filtered one.
        expect(rows.filter(has_not_text=ADMIN_USERNAME)).to_have_count(0, timeout=TIMEOUT_MS)
        expect(rows.filter(has_text="admin_prices_refreshed")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(rows.filter(has_text="admin_user_disabled")).to_have_count(1)
        total = int(page.locator("#audit-total").inner_text().split()[0])
        with page.expect_download() as download_info:
            page.click("#audit-export")
        csv_text = download_info.value.path().read_text()
        assert csv_text.startswith("id,at,event_type") and "Abuse report 7" in csv_text
        assert len(csv_text.strip().splitlines()) == total + 1  # the header and every matching event

        page.click("#admin-tab-overview")
        expect(page.locator("#ov-integrity")).to_contain_text("OK", timeout=TIMEOUT_MS)
    finally:
        customer_context.close()
        admin_context.close()
