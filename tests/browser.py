"""Shared setup of the browser tests: Debian's Chromium driven by Playwright for Python.

The tests fail (not skip) when the browser is missing: the README's test command installs
it (apt-get install chromium); `playwright install` cannot download here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

try:
    from playwright import sync_api
except ImportError:  # pragma: no cover - reported below
    sync_api = None

if sync_api is None or not CHROMIUM.exists():
    pytest.fail(
        "browser tests need Playwright for Python and Debian's Chromium at /usr/bin/chromium: "
        "apt-get install chromium && pip install -e '.[dev]'",
        pytrace=False,
    )


def launch(playwright: Any) -> Any:
    """Chromium with the flags this sandboxed, offline machine needs."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
