"""A real Chromium for the browser tests: Debian's package (installed by the test set-up when missing and
the machine allows it), driven by Playwright for Python; never a browser downloaded by a test tool.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.system_packages import find_or_install

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def artifacts(name: str) -> Path:
    """Where a test keeps what a person may want to look at afterwards (screenshots)."""
    path = Path(os.environ.get("CARE_ASSURE_ARTIFACTS", ROOT / "build" / "test-artifacts")) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_chromium() -> tuple[str | None, str]:
    """Debian's Chromium, installed when missing and allowed; else why not."""
    return find_or_install(lambda: shutil.which("chromium"), "chromium", "headless Chromium")


@contextmanager
def browser(chromium: str) -> Iterator[Any]:
    """A Playwright browser on the given Chromium binary."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=FLAGS[1:])
        try:
            yield b
        finally:
            b.close()
