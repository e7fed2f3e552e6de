"""Sessions in headless Chromium: the token cookie is HttpOnly, and logging out in one tab signs the other
open tabs out at the next live push."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, expect

from tests.browser.conftest import expect_toast_shown, record_toasts
from tests.support.helpers import STRONG_PASSWORD, user_payload

USERNAME = "sam_sessions"


def test_logout_in_one_tab_signs_the_other_out_and_scripts_never_see_the_token(app_url: str, browser: Browser) -> None:
    assert httpx.post(f"{app_url}/api/v1/auth/register", json=user_payload(USERNAME)).status_code == 201
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    record_toasts(context)
    try:
        first = context.new_page()
        first.goto(f"{app_url}/login?next=/portfolio")
        first.fill("#field-username", USERNAME)
        first.fill("#field-password", STRONG_PASSWORD)
        first.click("#login-submit")
        expect(first).to_have_url(re.compile(r"://[^/]+/portfolio/?$"), timeout=30_000)

        # A second tab of the same browser: signed in by the cookie its websocket sends.
        second = context.new_page()
        second.goto(f"{app_url}/orders")
        expect(second).to_have_url(re.compile(r"://[^/]+/orders/?$"), timeout=30_000)
        expect(second.locator("#nav-username")).to_be_visible(timeout=20_000)

        cookie = next(c for c in context.cookies() if c["name"] == "cnop_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "cnop_token" not in first.evaluate("document.cookie")
        assert "cnop_token" not in second.evaluate("document.cookie")

        second.locator("#nav-username").click()
        second.locator("#logout").click()
        expect(second).to_have_url(re.compile(r"/login"), timeout=20_000)
        assert not [c for c in context.cookies() if c["name"] == "cnop_token"]

        # The first tab is told at the next push (prices refresh every 3 s here) and leaves the page.
        expect_toast_shown(first, "Your session ended; please log in again")
        expect(first).to_have_url(re.compile(r"/login\?next=(%2F|/)portfolio"), timeout=20_000)
    finally:
        context.close()
