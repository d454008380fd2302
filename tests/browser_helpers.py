"""Helpers shared by the Playwright browser tests."""
from __future__ import annotations

import os
import re
import shutil
import time

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def wait_text(page, selector: str, pattern: str, timeout: int = 120_000) -> str:
    """Wait until the element's text matches the regular expression ``pattern``; returns the text."""
    deadline = time.monotonic() + timeout / 1000
    text = ""
    while time.monotonic() < deadline:
        loc = page.locator(selector).first
        text = loc.inner_text() if loc.count() else ""
        if re.search(pattern, text):
            return text
        page.wait_for_timeout(250)
    raise AssertionError(f"{selector} never matched {pattern!r} in {timeout / 1000:.0f} s; last text: {text[:300]!r}")
