"""The market page in headless Chromium: catalogue from the API, live prices without reload."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from cnop_app.state.market import FIRST_ROWS
from tests.browser.conftest import shot


def test_market_table_matches_api_and_updates_live(app_url: str, page: Page) -> None:
    assets = httpx.get(f"{app_url}/api/v1/inventory/assets?limit=100").json()["data"]
    assert assets[0]["asset_id"] == "BTC" and len(assets) > FIRST_ROWS
    page.goto(f"{app_url}/market")
    rows = page.locator(".market-row")
    expect(rows.first).to_contain_text("Bitcoin", timeout=30_000)
    # A screenful first, then the rest: every listed asset, the last one included.
    expect(rows).to_have_count(len(assets))
    expect(page.locator(f"#price-{assets[-1]['asset_id']}")).to_be_visible()
    expect(page.locator("#market-status")).to_contain_text("simulated")
    first_price = page.locator("#price-BTC").inner_text()
    assert re.fullmatch(r"\$[\d,]+\.\d{2}", first_price)
    shot(page, "market")

    # The simulated market refreshes every 3 s: the price changes in place, no reload.
    page.evaluate("window.__cnop_marker = 'same page'")
    expect(page.locator("#price-BTC")).not_to_have_text(first_price, timeout=30_000)
    assert page.evaluate("window.__cnop_marker") == "same page"

    # Search filters the table.
    page.fill("#market-search", "eth")
    expect(rows.first).to_contain_text("Ethereum", timeout=10_000)


def test_asset_page_shows_details_chart_and_trade_links(app_url: str, page: Page) -> None:
    detail = httpx.get(f"{app_url}/api/v1/inventory/assets/ETH").json()["data"]
    page.goto(f"{app_url}/market/eth")
    expect(page.get_by_role("heading", name=re.compile("Ethereum"))).to_be_visible(timeout=30_000)
    expect(page.locator("#asset-price")).to_have_text(re.compile(r"^\$[\d,]+\.\d{2}$"))
    expect(page.get_by_text("Market cap")).to_be_visible()
    assert detail["market_cap_rank"] == 2
    page.get_by_role("radio", name="30d").click()
    expect(page.locator(".recharts-surface").first).to_be_visible(timeout=10_000)
    expect(page.locator("#asset-buy")).to_be_visible()
    shot(page, "asset")
    page.goto(f"{app_url}/market/NOPE42")
    expect(page.locator("#asset-not-found")).to_be_visible(timeout=30_000)
