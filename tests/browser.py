"""A real headless Chromium (Debian's `chromium` package) driven by Playwright, for the page tests.

Without the browser the tests skip, except under CI=true, where a missing browser is a failure: .ci/run installs it.
"""

import contextlib
import os
import shutil

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_path():
    """The Chromium binary; skips the test (fails it under CI=true) when there is none."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        message = f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def page(viewport=(1280, 800)):
    """A new page in a fresh headless Chromium (1280 x 800: a laptop screen)."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (only where a browser runs)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            yield context.new_page()
        finally:
            browser.close()


def moment_times(browser_page):
    """[(start, end)] seconds read from the moments list as the page shows them ("12.34 – 15.67 s")."""
    texts = browser_page.locator("#moments .moment-times").all_inner_texts()
    return [tuple(float(value) for value in text.removesuffix(" s").split(" \u2013 ")) for text in texts]


def record_seeks(browser_page):
    """Starts recording where the page's player seeks to. A playing clock moves on after a seek, and a busy machine
    can delay the next poll past any tolerance: the position at each `seeking` event is what the page asked for."""
    browser_page.evaluate(
        "window.seeks = []; const player = document.getElementById('player');"
        "player.addEventListener('seeking', () => window.seeks.push(player.currentTime));"
    )


def wait_for_seek(browser_page, seconds, timeout_ms=15000):
    """Waits until the player has been sent to `seconds` (to 0.05 s) since `record_seeks`."""
    browser_page.wait_for_function(f"window.seeks.some((t) => Math.abs(t - {seconds}) < 0.05)", timeout=timeout_ms)


def assert_not_blank(png_path):
    """A screenshot with content: its grey levels vary (a blank page is one colour)."""
    from PIL import Image  # noqa: PLC0415

    pixels = np.asarray(Image.open(png_path).convert("L"), np.float32)
    assert pixels.std() > 10, f"{png_path} looks blank (grey-level std {pixels.std():.1f})"
