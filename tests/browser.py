"""A real Chromium for the browser tests: Debian's package (installed by the test set-up when missing and
the machine allows it), driven by Playwright for Python; never a browser downloaded by a test tool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def artifacts(name: str) -> Path:
    """Where a test keeps what a person may want to look at afterwards (screenshots)."""
    path = Path(os.environ.get("CARE_ASSURE_ARTIFACTS", ROOT / "build" / "test-artifacts")) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_chromium() -> str | None:
    found = shutil.which("chromium")
    if found or os.environ.get("CARE_ASSURE_NO_APT"):
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:  # the test set-up installs Debian's chromium when missing
        for step in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                     ["apt-get", "install", "-y", "-q", "chromium"]):
            subprocess.run(step, check=False, capture_output=True, timeout=600,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if shutil.which("chromium"):
                break
    return shutil.which("chromium")


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
