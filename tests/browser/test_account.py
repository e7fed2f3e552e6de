"""A new user in headless Chromium: register, log in, deposit, withdraw, history, profile, log out."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.support.helpers import STRONG_PASSWORD

USERNAME = "bea_trader"


def api_balance(app_url: str, username: str) -> str:
    token = httpx.post(f"{app_url}/api/v1/auth/login", json={"username": username, "password": STRONG_PASSWORD}).json()[
        "access_token"
    ]
    return httpx.get(f"{app_url}/api/v1/balance", headers={"Authorization": f"Bearer {token}"}).json()[
        "current_balance"
    ]


def test_protected_page_redirects_to_login_and_back(app_url: str, page: Page) -> None:
    page.goto(f"{app_url}/account")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount|/login\?next=/account"), timeout=30_000)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_new_user_journey(app_url: str, page: Page) -> None:
    page.goto(f"{app_url}/")
    expect(page.get_by_text("Paper-trade crypto on your own server")).to_be_visible()
    expect(page.locator(".landing-mover")).to_have_count(6, timeout=30_000)
    shot(page, "landing")

    page.goto(f"{app_url}/register")
    page.fill("#field-first_name", "Bea")
    page.fill("#field-last_name", "Trader")
    page.fill("#field-username", USERNAME)
    page.fill("#field-email", f"{USERNAME}@example.com")
    # A weak password is refused inline, next to the field.
    page.fill("#field-password", "short")
    page.fill("#field-confirm_password", "short")
    page.click("#register-submit")
    expect(page.locator("#error-password")).to_contain_text("at least 12 characters", timeout=20_000)
    shot(page, "register-error")
    page.fill("#field-password", STRONG_PASSWORD)
    page.fill("#field-confirm_password", STRONG_PASSWORD)
    page.click("#register-submit")

    # Registration signs the user in and lands on the account page.
    expect(page).to_have_url(re.compile(r"://[^/]+/account/?$"), timeout=30_000)
    expect(page.locator("#nav-username")).to_have_text(USERNAME)
    expect(page.locator("#cash-balance")).to_have_text("$0.00")
    expect(page.locator("#history-empty")).to_be_visible()

    # Deposit with a confirmation step.
    page.fill("#deposit-amount", "1500.25")
    page.click("#deposit-submit")
    expect(page.locator("#confirm-text")).to_contain_text("$1,500.25")
    page.click("#confirm-cash")
    expect(page.locator("#cash-balance")).to_have_text("$1,500.25", timeout=20_000)
    assert api_balance(app_url, USERNAME) == "1500.25"

    # Withdrawing more than the balance is refused inline and changes nothing.
    page.fill("#withdraw-amount", "2000")
    page.click("#withdraw-submit")
    page.click("#confirm-cash")
    expect(page.locator("#withdraw-error")).to_contain_text("Insufficient funds", timeout=20_000)
    expect(page.locator("#cash-balance")).to_have_text("$1,500.25")

    page.fill("#withdraw-amount", "200.25")
    page.click("#withdraw-submit")
    page.click("#confirm-cash")
    expect(page.locator("#cash-balance")).to_have_text("$1,300.00", timeout=20_000)
    expect(page.locator(".history-row")).to_have_count(2)
    expect(page.locator("#withdraw-remaining")).to_contain_text("$4,799.75")
    assert api_balance(app_url, USERNAME) == "1300.00"
    shot(page, "account")

    # The ledger downloads as CSV with exact amounts.
    with page.expect_download() as download_info:
        page.click("#history-export")
    exported = Path(download_info.value.path()).read_text().splitlines()
    assert exported[0].startswith("created_at,transaction_id,type,amount")
    assert [line.split(",")[2:4] for line in exported[1:]] == [["deposit", "1500.25"], ["withdraw", "-200.25"]]

    # Profile shows the user's details; edits are saved.
    page.goto(f"{app_url}/profile")
    expect(page.locator("#field-email")).to_have_value(f"{USERNAME}@example.com", timeout=20_000)
    page.fill("#field-first_name", "Beatrice")
    page.click("#profile-save")
    expect(page.get_by_text("Profile saved")).to_be_visible(timeout=20_000)
    shot(page, "profile")

    # Log out: protected pages send us back to the login page.
    page.locator("#nav-username").click()
    page.locator("#logout").click()
    expect(page).to_have_url(re.compile(r"/login"), timeout=20_000)
    page.goto(f"{app_url}/account")
    expect(page).to_have_url(re.compile(r"/login\?next="), timeout=20_000)

    # Log in again and return to the page we asked for.
    page.fill("#field-username", USERNAME.upper())
    page.fill("#field-password", STRONG_PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"://[^/]+/account/?$"), timeout=30_000)
    expect(page.locator("#cash-balance")).to_have_text("$1,300.00", timeout=20_000)
