"""A real browser on the demo's Slack-like page: Debian's Chromium driven by Playwright.

Skips, saying why, only where Chromium or Playwright is missing (CI installs both: .ci/run).
Set APPROVALS_SCREENSHOTS=docs to write the README's screenshots while the tests run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo import Demo, start_demo
from tests.running import stopping

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Debian's Chromium as a test browser: no sandbox (CI runs as root), nothing fetched in the background.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _why_no_browser() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed (pip install -e '.[dev]')"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)"
    return None


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    reason = _why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(tmp_path)}
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    running = await start_demo(port=0, workdir=tmp_path / "demo", poll_interval="2s", out=lambda _text: None)
    async with stopping(running):
        yield running


async def screenshot(page: Any, name: str) -> None:
    """The README's pictures, taken only when asked (APPROVALS_SCREENSHOTS=docs)."""
    if os.environ.get("APPROVALS_SCREENSHOTS") == "docs":
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"))
