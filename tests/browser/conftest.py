"""Browser-test fixtures: the real app started as `make run` starts it, and headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, sync_playwright

from tests.support.app_server import CHROMIUM, CHROMIUM_ARGS, running_app
from tests.support.helpers import STRONG_PASSWORD, free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN_USERNAME = "console_admin"  # created at start by CNOP_ADMIN_USERNAME / CNOP_ADMIN_PASSWORD

# Sonner takes a toast away after 4 s. A test that checks one tab while it drives another can look too late
# (seen: a signed-out tab's notice gone while the admin's page was still being checked), so the pages of a
# context given `record_toasts` keep the text of every toast they showed in their tab's sessionStorage.
_TOAST_LOG = "cnop-test-toasts"
_RECORD_TOASTS = f"""
(() => {{
  const key = {_TOAST_LOG!r};
  const record = () => {{
    const seen = JSON.parse(sessionStorage.getItem(key) || "[]");
    let grew = false;
    for (const toast of document.querySelectorAll("[data-sonner-toast]")) {{
      const text = toast.textContent.trim();
      if (text && !seen.includes(text)) {{ seen.push(text); grew = true; }}
    }}
    if (grew) sessionStorage.setItem(key, JSON.stringify(seen));
  }};
  new MutationObserver(record).observe(document, {{ childList: true, subtree: true, characterData: true }});
}})();
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/browser is a browser test: `make test` runs them alone, after the rest.
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app as `make run` starts it, on a simulated market that refreshes every 3 seconds."""
    settings = {
        "CNOP_MARKET_SOURCE": "simulated",
        "CNOP_REFRESH_ACTIVE_SECONDS": "3",
        "CNOP_REFRESH_IDLE_SECONDS": "3",
        "CNOP_ADMIN_USERNAME": ADMIN_USERNAME,
        "CNOP_ADMIN_PASSWORD": STRONG_PASSWORD,
    }
    with running_app(tmp_path_factory.mktemp("app"), free_port(), settings) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def shot(page: Page, name: str) -> None:
    """Save a screenshot for people to look at (test-artifacts/, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def record_toasts(context: BrowserContext) -> None:
    """Every page opened in `context` from now on records the toasts it shows (see `expect_toast_shown`)."""
    context.add_init_script(_RECORD_TOASTS)


def expect_toast_shown(page: Page, text: str, timeout_ms: int = 30_000) -> None:
    """Wait until `page` (of a context given `record_toasts`) has shown a toast containing `text`, even if
    the toast has gone again since."""
    try:
        page.wait_for_function(
            f"text => JSON.parse(sessionStorage.getItem({_TOAST_LOG!r}) || '[]').some(t => t.includes(text))",
            arg=text,
            timeout=timeout_ms,
        )
    except Error as exc:
        shown = page.evaluate(f"sessionStorage.getItem({_TOAST_LOG!r})")
        raise AssertionError(f"no toast containing {text!r} within {timeout_ms} ms; toasts shown: {shown}") from exc
