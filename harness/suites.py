"""Suites: which packs and rules an accreditation needs, and the policy that decides it.

A ``Catalogue`` knows every installed pack and suite (plus any extra pack directories the
user names) and resolves a suite to the concrete rules in force on an as-of date.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigurationError, Problem
from harness.packs import lint_cache
from harness.packs.loader import cross_pack_problems, discover, read_pack
from harness.packs.model import Pack, Rule
from harness.paths import standards_dir, suite_schema_path, suites_dir
from harness.results import Level
from harness.schemas import schema_problems
from harness.yamlsource import load_yaml


@dataclass(frozen=True, slots=True)
class PackSelection:
    pack: str
    version: str | None = None
    rules: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    blocking_levels: frozenset[Level]
    warning_levels: frozenset[Level]
    max_findings_per_rule: int = 100


@dataclass(frozen=True, slots=True)
class Suite:
    id: str
    title: str
    version: str
    description: str
    assessment: str
    packs: tuple[PackSelection, ...]
    policy: Policy
    path: str = ""
    properties: dict[str, int] = field(default_factory=dict)


def load_suite(path: Path, trust_lint_cache: bool = False) -> Suite:
    """Read and check one suite file; with ``trust_lint_cache``, bytes that passed before are not re-checked."""
    doc = load_yaml(path)
    sha = hashlib.sha256(b"suite\0" + doc.text.encode("utf-8")).hexdigest()
    if not (trust_lint_cache and lint_cache.passed(sha)):
        problems = schema_problems(doc, suite_schema_path())
        if problems:
            raise ConfigurationError(problems)
        if trust_lint_cache:
            lint_cache.record(sha)
    d = doc.data
    pol = d["policy"]
    return Suite(
        id=d["suite"], title=d["title"], version=d["version"], description=d.get("description", ""),
        assessment=d.get("assessment", "self"),
        packs=tuple(PackSelection(p["pack"], p.get("version"),
                                  tuple(p["rules"]) if "rules" in p else None,
                                  tuple(p.get("exclude", []))) for p in d["packs"]),
        policy=Policy(frozenset(Level(x) for x in pol["blocking_levels"]),
                      frozenset(Level(x) for x in pol.get("warning_levels", ["SHOULD"])),
                      pol.get("max_findings_per_rule", 100)),
        path=str(path), properties=dict(d.get("properties", {})),
    )


@dataclass
class Catalogue:
    """Installed (and extra) packs and suites."""

    pack_dirs: list[Path] = field(default_factory=lambda: [standards_dir()])
    suite_dirs: list[Path] = field(default_factory=lambda: [suites_dir()])
    _packs: dict[str, Pack] | None = None

    @classmethod
    def default(cls, extra_pack_dirs: Iterable[Path] = ()) -> Catalogue:
        return cls([standards_dir(), *extra_pack_dirs])

    def packs(self) -> dict[str, Pack]:
        if self._packs is None:
            packs: list[Pack] = []
            problems: list[Problem] = []
            for path in discover(self.pack_dirs):
                pack, found = read_pack(path, trust_lint_cache=True)
                problems.extend(found)
                if pack is not None:
                    packs.append(pack)
            problems.extend(cross_pack_problems(packs))
            if problems:
                raise ConfigurationError(problems)
            self._packs = {p.id: p for p in packs}
        return self._packs

    def suite_paths(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for d in self.suite_dirs:
            for p in sorted(d.glob("*.y*ml")):
                found[p.stem] = p
        return found

    def suite(self, name_or_path: str) -> Suite:
        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml") and path.is_file():
            return load_suite(path, trust_lint_cache=True)
        paths = self.suite_paths()
        if name_or_path not in paths:
            close = difflib.get_close_matches(name_or_path, list(paths), n=1)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(paths)) or "none"
            raise ConfigurationError(f"unknown suite '{name_or_path}'{hint} (installed: {known})")
        return load_suite(paths[name_or_path], trust_lint_cache=True)

    def rules_for(self, suite: Suite) -> list[Rule]:
        """Every rule the suite selects (before date and target filtering), in suite order."""
        packs = self.packs()
        problems: list[Problem] = []
        out: list[Rule] = []
        for sel in suite.packs:
            pack = packs.get(sel.pack)
            if pack is None:
                close = difflib.get_close_matches(sel.pack, list(packs), n=1)
                hint = f" — did you mean '{close[0]}'?" if close else ""
                problems.append(Problem(f"suite names unknown pack '{sel.pack}'{hint}", suite.path))
                continue
            if sel.version and sel.version != pack.version:
                problems.append(Problem(
                    f"suite needs {sel.pack} {sel.version}, installed is {pack.version}", suite.path))
                continue
            by_id = {r.id: r for r in pack.rules}
            for rid in (*(sel.rules or ()), *sel.exclude):
                if rid not in by_id:
                    problems.append(Problem(f"pack {sel.pack} has no rule '{rid}'", suite.path, rule=rid))
            chosen = [by_id[r] for r in sel.rules if r in by_id] if sel.rules else list(pack.rules)
            out.extend(r for r in chosen if r.id not in sel.exclude)
        if problems:
            raise ConfigurationError(problems)
        return out


def in_force(rules: Iterable[Rule], as_of: dt.date, target_kind: str) -> list[Rule]:
    return [r for r in rules if r.in_force(as_of) and target_kind in r.applies_to]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A suite's rules on one date: in force, coming later (with dates), and retired."""

    suite: Suite
    as_of: dt.date
    in_force: list[Rule]
    coming: list[Rule]
    retired: list[Rule]

    def as_dict(self) -> dict[str, object]:
        def row(r: Rule) -> dict[str, object]:
            return {"id": r.id, "title": r.title, "level": r.level.value, "standard": r.standard.id,
                    "standard_title": r.standard.title, "standard_version": r.standard.version, "clause": r.clause,
                    "since": r.effective_from.isoformat(),
                    "until": r.effective_until.isoformat() if r.effective_until else None,
                    "applies_to": sorted(r.applies_to), "pack": r.pack}
        return {"suite": {"id": self.suite.id, "version": self.suite.version, "title": self.suite.title},
                "as_of": self.as_of.isoformat(), "in_force": [row(r) for r in self.in_force],
                "coming": [row(r) for r in self.coming], "retired": [row(r) for r in self.retired]}


def schedule(catalogue: Catalogue, suite: Suite, as_of: dt.date) -> Schedule:
    """What the suite requires on ``as_of`` and what the roadmap changes after it."""
    rules = catalogue.rules_for(suite)
    return Schedule(
        suite, as_of,
        in_force=[r for r in rules if r.in_force(as_of)],
        coming=sorted((r for r in rules if r.effective_from > as_of), key=lambda r: (r.effective_from, r.id)),
        retired=[r for r in rules if r.effective_until is not None and r.effective_until <= as_of],
    )
