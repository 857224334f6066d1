"""A rule's screen never clears a resource the rule itself would report, a ``where`` schema never skips a
resource the rule applies to, and screening changes no report.

The engine asks one compiled schema per resource type whether a resource is clear of every rule
with a screen (``CheckKind.screen``: FHIRPath rules, cardinalities, must-support) and one Python
test for the structure family (``CheckKind.clear``); a cleared resource counts as each rule's
subject and is not checked further. Checked rule by rule — every screened rule of the bundled
suites on the reference supplier's export with every defect switch, R4 examples and Hypothesis
mutations of them — and run by run: the same report with screens on and off.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.export_generator import DEFECTS, Generator, write_ndjson
from harness import engine
from harness.fhirpath_schema import combined
from harness.plan import CompiledRule
from harness.runner import assess, plan_for
from harness.targets.export import ExportTarget
from tests.fhir_instances import mutants_of

SUITES = ("asl-dscr-core", "uk-core-base", "fhir-r4-base")
HOSTILE: list[Any] = ["", " ", None, {}, [], [None], True, 1.0, 2.5, "x", "#x", "CarePlan/1", "not-done",
                      {"reference": "CarePlan/1"}, {"_status": {"id": "a"}}, [{"system": "https://dmd.nhs.uk"}]]

SIBLINGS = ["valueString", "valueBoolean", "valueCoding", "valueCodeableConcept", "value", "_value", "valueé",
            "value_x", "extension", "coding", "system", "code", "url", "medicationReference", "_status"]


@cache
def _compiled(which: str) -> list[tuple[CompiledRule, Any]]:
    """Every rule of the suites with a ``screen`` (or ``unmatched``) schema, with that schema compiled."""
    out = {}
    for suite in SUITES:
        plan = plan_for(suite, "export", as_of=dt.date(2026, 11, 1), extra_pack_dirs=[], package_dir=None,
                        forecast_until=None, answers=None, target=None)
        for cr in plan.rules:
            schema = getattr(cr, which)
            if schema is not None:
                out[cr.rule.id] = (cr, jsonschema_rs.validator_for(combined([schema])))
    return list(out.values())


def _screened() -> list[tuple[CompiledRule, Any]]:
    found = _compiled("screen")
    kinds = {cr.rule.check["kind"] for cr, _ in found}
    assert {"fhirpath", "cardinality", "profile"} <= kinds, kinds
    constraints = {cr.rule.check["constraint"] for cr, _ in found if cr.rule.check["kind"] == "profile"}
    assert constraints == {"cardinality", "binding", "system", "must-support"}, constraints
    return found


def _unmatched() -> list[tuple[CompiledRule, Any]]:
    found = _compiled("unmatched")
    assert len(found) >= 3
    return found


def _is_subject(cr: CompiledRule, resource: dict[str, Any]) -> bool:
    try:
        return engine._matches(cr, resource)
    except Exception:  # noqa: BLE001 - a where that fails is the rule's error: the schema must not hide it
        return True


def _reports(cr: CompiledRule, resource: dict[str, Any]) -> list[Any]:
    """What the rule's own check says of the resource (an exception counts as a report)."""
    try:
        if cr.scope == "value":
            return [i for v in cr.select(resource) for i in [cr.check(v)] if i is not None]  # type: ignore[misc]
        values = cr.select(resource) if cr.select is not None else None
        return list(cr.check(resource, values))
    except Exception as exc:  # noqa: BLE001 - a crash is a report the screen must not have hidden
        return [exc]


def _judge(resource: dict[str, Any]) -> tuple[int, int]:
    """(rules whose screen cleared the resource, rules that report it); asserts none did both."""
    cleared = reported = 0
    for cr, validator in _screened():
        types = cr.rule.resources
        if "*" not in types and resource.get("resourceType") not in types:
            continue
        issues = _reports(cr, resource)
        reported += bool(issues)
        if validator.is_valid(resource):
            cleared += 1
            assert not issues, (cr.rule.id, issues[:2], json.dumps(resource)[:300])
    for cr, validator in _unmatched():
        if "*" not in cr.rule.resources and resource.get("resourceType") not in cr.rule.resources:
            continue
        subject = _is_subject(cr, resource)
        reported += subject
        if validator.is_valid(resource):
            cleared += 1
            assert not subject, (cr.rule.id, cr.rule.where, json.dumps(resource)[:300])
    return cleared, reported


@cache
def _pool() -> list[dict[str, Any]]:
    return list(Generator(12, seed=5, defects=tuple(sorted(DEFECTS))).resources())


def test_screens_clear_only_what_the_rule_would_not_report() -> None:
    cleared = reported = 0
    for resource in _pool():
        c, r = _judge(resource)
        cleared, reported = cleared + c, reported + r
    assert cleared > 300 and reported > 8, (cleared, reported)


def test_screens_clear_most_of_a_clean_export() -> None:
    """A screen that cleared nothing would pass every soundness test: a clean export is mostly cleared."""
    clean = list(Generator(3, seed=1).resources())
    hits = applicable = 0
    for resource in clean:
        for cr, validator in _screened():
            if resource["resourceType"] in cr.rule.resources and not _reports(cr, resource):
                applicable += 1
                hits += validator.is_valid(resource)
    assert hits >= 0.9 * applicable, (hits, applicable)


def _hostile(draw: st.DrawFn, parent: Any, key: Any) -> None:
    how = draw(st.sampled_from(["replace", "delete", "add", "double"]))
    if how == "double":  # an item twice (a second slice member), or a single value made a list of two
        value = parent[key]
        if isinstance(parent, list):
            parent.append(copy.deepcopy(value))
        else:
            parent[key] = [value, copy.deepcopy(value)]
    elif how == "replace":
        parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
    elif isinstance(parent, dict) and how == "delete":
        del parent[key]
    elif isinstance(parent, dict):  # a sibling: a second choice type, a companion, another slice's field
        parent[draw(st.sampled_from(SIBLINGS))] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))


def mutants() -> st.SearchStrategy[dict[str, Any]]:
    return mutants_of(_pool, _hostile)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_no_mutation_gets_past_a_screen_its_rule_reports(resource: dict[str, Any]) -> None:
    _judge(resource)


def _summary(result: Any) -> list[Any]:
    return [(r.rule, str(r.outcome), r.subjects, r.failed, r.errors, r.message,
             [(f.message, f.path, f.resource_id, str(f.location)) for f in r.findings], r.not_evaluated)
            for r in result.rules]


@pytest.mark.parametrize("defects", [(), tuple(sorted(DEFECTS))], ids=["clean", "every-defect"])
def test_a_run_reports_the_same_with_and_without_screens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        defects: tuple[str, ...]) -> None:
    write_ndjson(Generator(12, seed=9, defects=defects).resources(), tmp_path / "export")
    monkeypatch.setattr(engine, "SCREEN_AFTER", 1)  # screen from the first resource of each type
    runs = []
    for switch in ("1", "0"):
        monkeypatch.setenv(engine.SCREENS_SWITCH, switch)
        runs.append(assess("asl-dscr-core", ExportTarget([tmp_path / "export"]), as_of=dt.date(2026, 11, 1),
                           attestations=Path("fixtures/attestations/attestations.yaml")))
    assert _summary(runs[0].result) == _summary(runs[1].result)
    assert runs[0].decision.outcome == runs[1].decision.outcome
