"""Load rule packs from YAML: schema check, semantic lint, content hash.

``lint`` collects every problem (schema and semantic) with file, line and rule id; ``load``
raises a ConfigurationError carrying them all when there is any.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.checks import REGISTRY, Registry
from harness.checks.values import linear_regex
from harness.errors import ConfigurationError, Problem
from harness.fhir.element_paths import unknown_elements
from harness.fhir.model import r4
from harness.fhirpath import FHIRPathSyntaxError, compile_path
from harness.packs import lint_cache
from harness.packs.model import Pack, Rule, Standard
from harness.paths import rulepack_schema_path, standards_dir
from harness.results import Level
from harness.schemas import schema_problems, validate_params
from harness.yamlsource import YamlDocument, load_yaml

FHIRPATH_PARAMS = ("expression", "via", "key", "related_where")


def discover(dirs: Iterable[Path]) -> list[Path]:
    """Every pack file (``*.yaml``/``*.yml``) under the given directories, sorted."""
    found: list[Path] = []
    for d in dirs:
        if d.is_file():
            found.append(d)
        elif d.is_dir():
            found.extend(sorted(p for p in d.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            raise ConfigurationError(Problem("no such file or directory", str(d)))
    return found


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(standards_dir().resolve().parent))
    except ValueError:
        return str(path)


def read_pack(path: Path, registry: Registry = REGISTRY,
              trust_lint_cache: bool = False) -> tuple[Pack | None, list[Problem]]:
    """Parse and lint one pack file; the pack is None when it cannot be built.

    With ``trust_lint_cache`` (a run, not `packs lint`), bytes that already passed lint with this
    harness are built without linting them again (see ``lint_cache``).
    """
    display = _display(path)
    try:
        doc = load_yaml(path, display)
    except ConfigurationError as exc:
        return None, exc.problems
    sha = hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
    if trust_lint_cache and lint_cache.passed(sha):
        pack, problems = _build(doc, registry, lint=False)
        if not problems:
            return pack, problems
    rules_data = doc.data.get("rules") if isinstance(doc.data, dict) else None

    def rule_of(pointer: tuple[Any, ...]) -> str | None:
        if len(pointer) >= 2 and pointer[0] == "rules" and isinstance(rules_data, list):
            idx = pointer[1]
            if isinstance(idx, int) and idx < len(rules_data) and isinstance(rules_data[idx], dict):
                rid = rules_data[idx].get("id")
                return str(rid) if rid is not None else None
        return None

    problems = schema_problems(doc, rulepack_schema_path(), rule_of)
    if problems:
        return None, problems
    pack, problems = _build(doc, registry)
    if trust_lint_cache and not problems:
        lint_cache.record(sha)
    return pack, problems


def _build(doc: YamlDocument, registry: Registry, lint: bool = True) -> tuple[Pack, list[Problem]]:
    data = doc.data
    problems: list[Problem] = []
    standards = {s["id"]: Standard(s["id"], s["title"], s["version"], s.get("url"), s.get("evidence"))
                 for s in data["standards"]}
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(data["rules"]):
        line = doc.line_of(("rules", i))
        rid = r["id"]

        def problem(message: str, *ptr: Any, _i: int = i, _rid: str = rid) -> None:
            problems.append(Problem(message, doc.path, doc.line_of(("rules", _i, *ptr)), _rid))

        if rid in seen:
            problem(f"duplicate rule id (first defined on line {seen[rid]})", "id")
        seen.setdefault(rid, line or 0)
        standard = standards.get(r["standard"])
        if standard is None:
            close = difflib.get_close_matches(r["standard"], list(standards), n=1)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            problem(f"standard '{r['standard']}' is not declared in this pack{hint}", "standard")
            continue
        resources = (r["resource"],) if isinstance(r["resource"], str) else tuple(r["resource"])
        if lint:
            _lint_resources(resources, problem)
            _lint_check(r, registry, problem)
            for field in ("select", "where"):
                if field in r:
                    _lint_fhirpath(r[field], problem, field)
                    _lint_elements(r[field], resources, problem, field)
            if isinstance(r["check"].get("expression"), str):
                _lint_elements(r["check"]["expression"], resources, problem, "check", "expression")
        start = dt.date.fromisoformat(r["effective_from"])
        until = dt.date.fromisoformat(r["effective_until"]) if "effective_until" in r else None
        if until is not None and until <= start:
            problem("effective_until must be after effective_from", "effective_until")
        rules.append(Rule(
            id=rid, pack=data["pack"], title=r["title"], level=Level(r["level"]), standard=standard,
            clause=r["clause"], applies_to=frozenset(r["applies_to"]), effective_from=start,
            effective_until=until, resources=resources, check=dict(r["check"]),
            remediation=r["remediation"].strip(), where=r.get("where"), select=r.get("select"),
            when_absent=r.get("when_absent", "fail"), aliases=tuple(r.get("aliases", [])),
            note=r.get("note"), file=doc.path, line=line,
        ))
    pack = Pack(
        id=data["pack"], title=data["title"], version=data["version"],
        status=data.get("status", "active"), standards=tuple(standards.values()),
        rules=tuple(rules), path=doc.path,
        sha256=hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
        description=data.get("description", ""),
        not_encoded=tuple(dict(x) for x in data.get("not_encoded", [])),
    )
    return pack, problems


def _lint_resources(resources: tuple[str, ...], problem: Any) -> None:
    model = r4()
    for name in resources:
        if name == "*" or name in model.resource_types:
            continue
        close = difflib.get_close_matches(name, list(model.resource_types), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        problem(f"unknown resource type '{name}'{hint}", "resource")


def _lint_fhirpath(expression: str, problem: Any, *ptr: Any) -> None:
    """The expression parses, and evaluates on an empty resource (catches unknown functions and arity)."""
    where = ".".join(str(p) for p in ptr)
    try:
        compiled = compile_path(expression)
    except FHIRPathSyntaxError as exc:
        problem(f"{where}: {exc}: {expression}", *ptr)
        return
    try:
        compiled({"resourceType": "Basic"})
    except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exceptions for bad calls
        problem(f"{where}: FHIRPath does not evaluate ({exc}): {expression}", *ptr)


def _lint_elements(expression: str, resources: tuple[str, ...], problem: Any, *ptr: Any) -> None:
    """Every element the expression names exists on the rule's resource type (else the rule can never fail)."""
    where = ".".join(str(p) for p in ptr)
    try:
        unknown = unknown_elements(expression, resources)
    except FHIRPathSyntaxError:
        return  # reported by _lint_fhirpath
    for name, on, close in unknown:
        hint = f" — did you mean '{close}'?" if close else ""
        problem(f"{where}: element '{name}' does not exist on {on}, so the rule can never fail{hint}", *ptr)


def _lint_check(r: dict[str, Any], registry: Registry, problem: Any) -> None:
    check = r["check"]
    kind_name = check["kind"]
    if kind_name not in registry:
        problem(registry.unknown_message(kind_name), "check", "kind")
        return
    kind = registry.get(kind_name)
    for message in validate_params(kind.params, check):
        problem(f"check: {message}", "check")
    if kind_name == "pattern" and isinstance(check.get("regex"), str):
        try:
            linear_regex(check["regex"])
        except ValueError as exc:
            problem(f"check: {exc}", "check", "regex")
    if kind.needs_select and "select" not in r:
        problem(f"check kind '{kind_name}' needs a 'select' expression", "check")
    for name in FHIRPATH_PARAMS:
        if isinstance(check.get(name), str):
            _lint_fhirpath(check[name], problem, "check", name)
    related = check.get("related")
    if isinstance(related, str) and related not in r4().resource_types:
        _lint_resources((related,), lambda m, *p: problem(m, "check", "related"))


def load_pack(path: Path, registry: Registry = REGISTRY) -> Pack:
    pack, problems = read_pack(path, registry)
    if problems or pack is None:
        raise ConfigurationError(problems)
    return pack


def lint_paths(paths: Iterable[Path], registry: Registry = REGISTRY) -> tuple[list[Pack], list[Problem]]:
    """Lint every pack under the paths, including rule ids duplicated across packs."""
    packs: list[Pack] = []
    problems: list[Problem] = []
    for path in discover(paths):
        pack, found = read_pack(path, registry)
        problems.extend(found)
        if pack is not None:
            packs.append(pack)
    problems.extend(cross_pack_problems(packs))
    return packs, problems


def cross_pack_problems(packs: list[Pack]) -> list[Problem]:
    problems = []
    owner: dict[str, Rule] = {}
    pack_ids: dict[str, Pack] = {}
    for pack in packs:
        if pack.id in pack_ids:
            problems.append(Problem(f"pack id '{pack.id}' is also used by {pack_ids[pack.id].path}",
                                    pack.path, 1))
        pack_ids.setdefault(pack.id, pack)
        for rule in pack.rules:
            for name in (rule.id, *rule.aliases):
                first = owner.get(name)
                if first is not None and first is not rule and first.pack != rule.pack:
                    problems.append(Problem(f"rule id '{name}' is also defined in {first.file}:{first.line}",
                                            rule.file, rule.line, rule.id))
                owner.setdefault(name, rule)
    return problems
