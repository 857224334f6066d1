"""Shared test fixtures: where the shared data lives, and helpers that run the real engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import Phase, settings

# Hypothesis's "explain" phase reruns a failing test many times to annotate it; with tests that run
# the whole engine per example that can take an hour. Shrinking still gives the minimal example.
settings.register_profile("care-assure", phases=tuple(p for p in Phase if p is not Phase.explain))
settings.load_profile("care-assure")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CARE_ASSURE_SHARED", ROOT.parent / "shared")).resolve()
DATA = SHARED / "data"


REFERENCE_ATTESTATIONS = ROOT / "fixtures" / "attestations" / "attestations.yaml"


def pytest_configure(config: pytest.Config) -> None:
    if not DATA.is_dir():
        raise pytest.UsageError(f"shared data not found at {DATA}; set CARE_ASSURE_SHARED")
    # The reference supplier's answers to attestation rules, for every run the tests make (as a supplier's
    # CI would set it); tests of missing answers clear it.
    os.environ["CARE_ASSURE_ATTESTATIONS"] = str(REFERENCE_ATTESTATIONS)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium for the browser tests (installed when missing and allowed)."""
    from tests.browser import find_chromium

    path, reason = find_chromium()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA

pytest_plugins = ["pytester"]
