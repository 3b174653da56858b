"""Test helper: Debian's Chromium driven by Playwright, for the tests that use a page as a person would."""
import contextlib
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The marks of a browser test: skipped, saying why, where Debian's Chromium is not installed.
BROWSER_TEST = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                       "(/usr/bin/chromium missing): run ./setup.sh or apt-get install chromium"),
]


@contextlib.contextmanager
def browser_page(origin=None, viewport=(1400, 900), on_failure=None):
    """A page in a new headless Chromium (the clipboard allowed for ``origin``), closed after the block. When the
    block fails, ``on_failure(page)`` runs first (a screenshot), and the block's own error is kept."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            if origin:
                context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
            page = context.new_page()
            try:
                yield page
            except BaseException:
                if on_failure:
                    try:
                        on_failure(page)
                    except Exception as error:  # the page may be gone: keep the block's own failure
                        print(f"no failure screenshot: {error}")
                raise
        finally:
            browser.close()
