"""The interactive page in a real browser (Debian's Chromium, driven by playwright)."""

from __future__ import annotations

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_browser_starts(browser, tmp_path):
    page = browser.new_page()
    path = tmp_path / "p.html"
    path.write_text("<p id=a>hi</p>")
    page.goto(path.as_uri())
    assert page.inner_text("#a") == "hi"
