"""Engine outcomes: errors are never passes, absence is judged, dates and caps, shards merge."""

from __future__ import annotations

import datetime as dt
import gc
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from fixtures.export_generator import DEFECTS, Generator
from harness import engine
from harness.decision import decide
from harness.engine import Run
from harness.plan import build_plan
from harness.results import Level, Outcome, RuleResult
from harness.suites import Catalogue, Policy
from harness.targets.export import ExportTarget
from tests.helpers import AS_OF, one_pack_run, rule_yaml, run_suite, write_ndjson

GOOD = {"resourceType": "Patient", "id": "p", "identifier": [
    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}]}


def test_unreadable_line_is_an_error_and_the_rest_is_still_checked(tmp_path: Path) -> None:
    f = tmp_path / "export" / "Patient.ndjson"
    f.parent.mkdir()
    f.write_bytes(b'{"resourceType":"Patient",\n' + __import__("orjson").dumps(GOOD) + b"\n")
    a = run_suite(f.parent)
    read = a.result.rule("HARNESS-READ-001")
    assert read.outcome == Outcome.ERROR
    assert [str(x.location) for x in read.findings] == ["export/Patient.ndjson:1"]
    assert a.result.rule("NHSNO-CHK-001").outcome == Outcome.FAIL  # the good line still counted
    assert a.decision.outcome == "fail"
    assert any(r.rule == "HARNESS-READ-001" for r in a.decision.reasons)


def test_empty_export_fails_rules_that_need_data(tmp_path: Path) -> None:
    f = tmp_path / "export" / "empty.ndjson"
    f.parent.mkdir()
    f.write_bytes(b"")
    a = run_suite(f.parent)
    assert a.result.rule("HARNESS-READ-001").outcome == Outcome.FAIL
    assert a.result.rule("NHSNO-CHK-001").outcome == Outcome.FAIL
    assert "needs data" in (a.result.rule("NHSNO-CHK-001").message or "")
    assert a.result.rule("ODS-FMT-001").outcome == Outcome.NOT_APPLICABLE
    assert a.decision.outcome == "fail"


def test_rules_in_force_by_as_of_date(tmp_path: Path) -> None:
    rules = rule_yaml("T-LATER-001", select="name", check="{kind: cardinality, min: 1}").replace(
        "2020-01-01", "2030-06-01") + rule_yaml("T-GONE-001", select="name", check="{kind: cardinality, min: 1}",
                                                effective_until="2025-01-01")
    before = one_pack_run(tmp_path, rules, [GOOD], as_of=dt.date(2026, 1, 1))
    assert [r.rule for r in before.rules] == ["HARNESS-READ-001"]
    after = one_pack_run(tmp_path, rules, [GOOD], as_of=dt.date(2030, 6, 1))
    assert [r.rule for r in after.rules] == ["HARNESS-READ-001", "T-LATER-001"]
    early = one_pack_run(tmp_path, rules, [GOOD], as_of=dt.date(2024, 12, 31))
    assert [r.rule for r in early.rules] == ["HARNESS-READ-001", "T-GONE-001"]


def test_findings_are_capped_but_counts_exact(tmp_path: Path) -> None:
    patients = [dict(GOOD, id=f"p{i}") for i in range(250)]
    result = one_pack_run(tmp_path, rule_yaml(select="name", check="{kind: cardinality, min: 1}"), patients)
    r = result.rule("T-RULE-001")
    assert (r.outcome, r.subjects, r.failed, len(r.findings)) == (Outcome.FAIL, 250, 250, 100)
    assert r.findings_truncated


def test_where_that_crashes_is_an_error(tmp_path: Path) -> None:
    result = one_pack_run(tmp_path, rule_yaml(where="name.given", select="name",
                                              check="{kind: cardinality, min: 1}"),
                          [dict(GOOD, name=[{"given": ["a", "b"]}])])
    r = result.rule("T-RULE-001")
    assert r.outcome == Outcome.ERROR
    assert "must give one boolean" in r.findings[0].message


def _rr(level: Level, outcome: Outcome) -> RuleResult:
    return RuleResult("R", "p", level, "t", "s", "c", "r", outcome)


def test_decision_policy() -> None:
    policy = Policy(frozenset({Level.MUST}), frozenset({Level.SHOULD}))
    read = RuleResult("HARNESS-READ-001", "h", Level.MUST, "t", "s", "c", "r", Outcome.PASS)
    assert decide([read, _rr(Level.MUST, Outcome.PASS), _rr(Level.SHOULD, Outcome.FAIL)], policy).outcome == "pass"
    for bad in (Outcome.FAIL, Outcome.ERROR, Outcome.MANUAL):
        assert decide([read, _rr(Level.MUST, bad)], policy).outcome == "fail"
    for fine in (Outcome.NOT_APPLICABLE, Outcome.WAIVED):
        assert decide([read, _rr(Level.MUST, fine)], policy).outcome == "pass"
    nothing = decide([read], policy)
    assert nothing.outcome == "fail" and "no rules are in force" in nothing.reasons[0].message


def test_sharded_runs_merge_to_the_same_result(tmp_path: Path) -> None:
    export = tmp_path / "export"
    resources = list(Generator(12, seed=5, defects=("nhs-duplicate", "dangling-reference",
                                                    "ods-lowercase")).resources())
    write_ndjson(export / "all.ndjson", resources)
    catalogue = Catalogue.default()
    plan = build_plan(catalogue.suite("asl-dscr-core"), catalogue, AS_OF, "export")
    items = list(ExportTarget([export]).items())
    whole = Run(plan)
    whole.feed(items)
    left, right = Run(plan), Run(plan)
    left.feed(items[::2])
    right.feed(items[1::2])
    left.merge(right)
    a = whole.finish([], "export", True)
    b = left.finish([], "export", True)

    def summary(rr: list[RuleResult]) -> list[tuple[str, str, int, int, frozenset[str | None]]]:
        return [(r.rule, r.outcome.value, r.subjects, r.failed, frozenset(f.resource_id for f in r.findings))
                for r in rr]

    assert summary(a.rules) == summary(b.rules)
    assert {r.rule for r in a.rules if r.outcome == Outcome.FAIL} == {"NHSNO-UNQ-001", "FHIR-REF-001", "ODS-FMT-001"}


def _full_summary(result: Any) -> list[Any]:
    return [(r.rule, r.outcome.value, r.subjects, r.failed, r.errors, r.message,
             [(f.message, f.path, f.resource_id, str(f.location)) for f in r.findings], r.not_evaluated)
            for r in result.rules]


def test_checking_in_batches_reports_what_one_at_a_time_does(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Resources are checked stage by stage in batches of one type; the report (findings, their order
    under the cap, subjects, counts) is the one of checking each resource through every rule in turn —
    types interleaved (a batch ends at each change of type), every defect, batches of 1, 3 and 64."""
    resources = list(Generator(8, seed=3, defects=tuple(sorted(DEFECTS))).resources())
    random.Random(7).shuffle(resources)
    write_ndjson(tmp_path / "export" / "mixed.ndjson", resources)
    reports = []
    for size in (1, 3, 64):
        monkeypatch.setattr(engine, "BATCH", size)
        reports.append(_full_summary(run_suite(tmp_path / "export").result))
    assert reports[0] == reports[1] == reports[2]
    assert any(r[1] == "fail" for r in reports[0])


def test_a_stop_checks_what_was_read_before_it(tmp_path: Path) -> None:
    """A deadline that ends the stream midway: every resource read before it is checked and counted
    (none left waiting in a batch), and the rules that found nothing are not evaluated, never passed."""
    bad = [{"resourceType": "Patient", "id": f"p{i}"} for i in range(10)]  # no NHS number: each fails
    write_ndjson(tmp_path / "export" / "Patient.ndjson", bad)
    catalogue = Catalogue.default()
    plan = build_plan(catalogue.suite("asl-dscr-core"), catalogue, AS_OF, "export")
    asked = iter(range(100))
    result = engine.run_plan(plan, ExportTarget([tmp_path / "export"]),
                             stop=lambda: "deadline" if next(asked) >= 7 else None)
    assert result.resources_read == 7
    assert result.resource_counts == {"Patient": 7}
    outcomes = {r.rule: r for r in result.rules}
    assert outcomes["NHSNO-ABS-001"].outcome == Outcome.FAIL and outcomes["NHSNO-ABS-001"].failed == 7
    assert outcomes["FHIR-REF-004"].outcome == Outcome.ERROR  # a dataset rule judged on a fragment: no verdict
    assert all(r.outcome != Outcome.PASS for r in result.rules if r.rule != "HARNESS-READ-001")


def test_a_run_collects_garbage_less_often_and_puts_the_setting_back(tmp_path: Path) -> None:
    """While runs feed, the collector's youngest generation waits longer; the process's own setting comes
    back when the last run still feeding ends, however runs overlap: here run A begins, then B (another
    thread), A ends while B still feeds, then B ends."""
    export = write_ndjson(tmp_path / "export" / "Patient.ndjson", [GOOD])
    catalogue = Catalogue.default()
    plan = build_plan(catalogue.suite("asl-dscr-core"), catalogue, AS_OF, "export")
    a_started, b_started, b_may_end = (threading.Event() for _ in range(3))
    seen: dict[str, tuple[int, ...]] = {}

    def items(started: threading.Event, wait: threading.Event | None, name: str) -> Any:
        started.set()
        if wait is not None:
            assert wait.wait(10)
        seen[name] = gc.get_threshold()
        yield from ExportTarget([export.parent]).items()

    def run_b() -> None:
        assert a_started.wait(10)
        Run(plan).feed(items(b_started, b_may_end, "b"))

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        b = threading.Thread(target=run_b)
        b.start()
        Run(plan).feed(items(a_started, b_started, "a"))
        seen["after a"] = gc.get_threshold()  # B is still feeding (waiting for b_may_end)
        b_may_end.set()
        b.join(10)
        assert seen == {"a": (engine.GC_YOUNG, 10, 10), "after a": (engine.GC_YOUNG, 10, 10),
                        "b": (engine.GC_YOUNG, 10, 10)}
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
