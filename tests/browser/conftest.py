"""The dashboard page in headless Chromium against the real local stack (`python -m local.stack`).

Chromium is Debian's `chromium` package (`make test` installs it where it can); Playwright drives it
through `executable_path`, never with a browser of its own. Where either is missing, the browser
tests are skipped with a message naming what to install.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_VARIABLE = "CHROMIUM_PATH"


def chromium_path() -> str | None:
    """The Chromium to drive: $CHROMIUM_PATH, else Debian's `chromium` on PATH."""
    configured = os.environ.get(CHROMIUM_VARIABLE)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "browser test skipped: headless Chromium not found. Install Debian's package "
            "(`apt-get update && apt-get install -y chromium`, which `make test` does when run as root) "
            "or set CHROMIUM_PATH to a Chromium binary."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "browser test skipped: the `playwright` Python package is missing (pip install -r requirements-dev.txt)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()
