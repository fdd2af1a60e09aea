"""Debian's chromium driven by Playwright for Python, headless, with a fresh profile per
test; the browser is never downloaded (executable_path is the system binary)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = os.environ.get("PORTCULLIS_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[object]:
    """A page in a new chromium with its own user-data-dir (removed afterwards)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"chromium is not installed at {CHROMIUM} (Debian package chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="portcullis-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=ARGS, headless=True,
                viewport={"width": width, "height": height})
            try:
                context.set_default_timeout(15_000)
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
