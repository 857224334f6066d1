"""A run does not lint pack bytes that already passed lint with this harness; changed bytes, and `packs lint`,
are always linted."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigurationError
from harness.packs import lint_cache, loader
from harness.suites import Catalogue
from tests.helpers import rule_yaml

PACK = ("pack: cache.pack\ntitle: Cache test\nversion: 1.0.0\n"
        "standards: [{id: T, title: Test standard, version: '1'}]\nrules:\n")


def _write(folder: Path, select: str) -> Path:
    folder.mkdir(exist_ok=True)
    rule = rule_yaml("CACHE-001", select=select, check="{kind: cardinality, min: 1}")
    path = folder / "cache.yaml"
    path.write_text(PACK + textwrap.indent(rule, "  "), encoding="utf-8")
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CARE_ASSURE_CACHE", str(tmp_path / "cache"))
    lint_cache._passed.cache_clear()
    yield tmp_path / "cache"
    lint_cache._passed.cache_clear()


def _lints(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = loader._lint_check

    def counting(r: dict[str, Any], *rest: Any) -> None:
        seen.append(r["id"])
        real(r, *rest)

    monkeypatch.setattr(loader, "_lint_check", counting)
    return seen


def test_passed_bytes_are_not_linted_again_but_changed_ones_are(cache: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    packs = tmp_path / "packs"
    path = _write(packs, "identifier")
    seen = _lints(monkeypatch)
    assert "cache.pack" in Catalogue([packs]).packs()
    assert seen == ["CACHE-001"]
    recorded = json.loads(next(cache.glob("linted-packs-*.json")).read_text(encoding="utf-8"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() in recorded
    assert "cache.pack" in Catalogue([packs]).packs()
    assert seen == ["CACHE-001"]  # the same bytes: built without linting them again
    _write(packs, "identifer")  # a typo: the rule could never fail
    with pytest.raises(ConfigurationError, match="did you mean 'identifier'"):
        Catalogue([packs]).packs()
    assert seen == ["CACHE-001", "CACHE-001"]
    assert len(json.loads(next(cache.glob("linted-packs-*.json")).read_text(encoding="utf-8"))) == 1


def test_packs_lint_always_lints(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packs = tmp_path / "packs"
    _write(packs, "identifier")
    Catalogue([packs]).packs()  # recorded as passed
    seen = _lints(monkeypatch)
    _found, problems = loader.lint_paths([packs])
    assert problems == [] and seen == ["CACHE-001"]


def test_an_unwritable_cache_means_every_pack_is_linted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("CARE_ASSURE_CACHE", str(blocker / "cache"))
    lint_cache._passed.cache_clear()
    packs = tmp_path / "packs"
    _write(packs, "identifier")
    seen = _lints(monkeypatch)
    Catalogue([packs]).packs()
    lint_cache._passed.cache_clear()  # as the next run, in a new process, finds it
    Catalogue([packs]).packs()
    assert seen == ["CACHE-001"] * 2
    lint_cache._passed.cache_clear()


SUITE = ("suite: cache-suite\ntitle: Cache suite\nversion: 1.0.0\n"
         "packs: [{pack: cache.pack}]\npolicy: {blocking_levels: [MUST]}\n")


def test_a_suite_is_checked_once_per_bytes_and_a_changed_one_again(cache: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import suites

    path = tmp_path / "cache-suite.yaml"
    path.write_text(SUITE, encoding="utf-8")
    checked: list[str] = []
    real = suites.schema_problems
    monkeypatch.setattr(suites, "schema_problems", lambda doc, schema: checked.append(doc.path) or real(doc, schema))
    catalogue = Catalogue([tmp_path / "packs"], [tmp_path])
    assert catalogue.suite("cache-suite").id == "cache-suite"
    assert catalogue.suite("cache-suite").id == "cache-suite"
    assert len(checked) == 1  # the same bytes passed: not checked again
    path.write_text(SUITE.replace("policy: {blocking_levels: [MUST]}", "policy: {blocking_levels: [NEVER]}"),
                    encoding="utf-8")
    with pytest.raises(ConfigurationError, match="blocking_levels"):
        catalogue.suite("cache-suite")
    assert len(checked) == 2
