"""Debian's Chromium, driven by Playwright: headless, with a fresh profile and nothing that
reaches out to the network on its own (the machines this runs on may have none)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class BrowserMissing(RuntimeError):
    """No Chromium to drive."""


def chromium_path() -> Path | None:
    """Debian's Chromium (``apt-get install chromium``), or None when it is not installed."""
    found = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    return Path(found) if found else None


@contextlib.contextmanager
def browser_page(width: int = 1200, height: int = 900, scale: float = 1) -> Iterator:
    """A Playwright page of a Chromium started for it alone (a profile of its own, thrown
    away after)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise BrowserMissing(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium")
    with (
        tempfile.TemporaryDirectory(prefix="segment_assets_chromium_") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(executable),
            args=list(CHROMIUM_FLAGS),
            headless=True,
            viewport={"width": width, "height": height},
            device_scale_factor=scale,
            timezone_id="UTC",
            locale="en-US",
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
