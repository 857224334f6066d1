"""The encoded standards: every pack lints, every rule cites a clause and a date, the coverage table
is current, attestations behave, the roadmap shows up on future dates, and diffs name what changed."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.attestations import ENV, load_attestations
from harness.checks.http import _expectations  # the one expectation function every probe uses
from harness.cli import app
from harness.errors import ConfigurationError
from harness.packs.coverage import render_coverage
from harness.packs.loader import lint_paths
from harness.paths import standards_dir
from harness.suites import Catalogue
from tests.conftest import REFERENCE_ATTESTATIONS
from tests.helpers import one_pack_run, reference_export, run_suite

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def cli(*args: str | Path, code: int = 0, env: dict[str, str] | None = None) -> Any:
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})
    assert res.exit_code == code, res.output
    return res


def test_every_pack_lints_and_every_rule_cites_a_clause_and_a_date() -> None:
    packs, problems = lint_paths([standards_dir()])
    assert problems == []
    assert len(packs) >= 15
    for pack in packs:
        for rule in pack.rules:
            assert rule.clause.strip() and isinstance(rule.effective_from, dt.date), rule.id
            assert rule.standard.id and rule.standard.version, rule.id
            weak = rule.standard.evidence in ("V-S", "INF")
            if weak and rule.level.value == "MUST":
                pytest.fail(f"{rule.id}: MUST on a weakly sourced standard ({rule.standard.id})")


def test_coverage_table_is_current() -> None:
    committed = (ROOT / "standards" / "COVERAGE.md").read_text(encoding="utf-8")
    regenerated = render_coverage(Catalogue.default())
    assert committed == regenerated, "stale: run care-assure packs coverage --out standards/COVERAGE.md"
    for needle in ("DAPB4013", "DAPB1605", "DAPB4102", "PRSB-ABOUTME", "UKCore-STU2", "Left out on purpose"):
        assert needle in committed


def test_suites_named_in_the_issue_exist_with_their_packs() -> None:
    catalogue = Catalogue.default()
    core = {p.pack for p in catalogue.suite("asl-dscr-core").packs}
    roadmap = {p.pack for p in catalogue.suite("asl-dscr-roadmap").packs}
    base = {p.pack for p in catalogue.suite("uk-core-base").packs}
    assert {"isn.dapb4013", "isn.dapb1605", "isn.dapb4102", "isn.prsb-about-me", "dscr.attestations"} <= core
    assert roadmap - core == {"dscr.roadmap"}
    assert base == {"fhir.r4-base", "uk-core.stu2", "uk-core.draft", "identifiers.nhs-number", "identifiers.ods",
                    "identifiers.snomed"}
    assert {p.pack for p in catalogue.suite("fhir-r4-base").packs} == {"fhir.r4-base"}


# -- attestations --------------------------------------------------------------------------------------------

def _attestations(tmp_path: Path, body: str) -> Path:
    (tmp_path / "case.pdf").write_bytes(b"%PDF synthetic")
    path = tmp_path / "attestations.yaml"
    path.write_text(body, encoding="utf-8")
    return path


ATTESTATION_RULE = """\
- id: T-ATT-001
  title: attested
  level: MUST
  standard: T
  clause: c
  applies_to: [export]
  effective_from: 2020-01-01
  resource: "*"
  check: {kind: attestation, question: Is there a safety case?, evidence: [safety case]}
  remediation: attest
"""
PATIENT = [{"resourceType": "Patient", "id": "p"}]


@pytest.mark.parametrize(("answer", "outcome"), [
    ("answer: yes\n    evidence: [case.pdf]", "pass"),
    ("answer: no", "fail"),
    ("answer: yes", "manual"),  # yes, but without the evidence the rule asks for
])
def test_attestation_outcomes(tmp_path: Path, answer: str, outcome: str) -> None:
    path = _attestations(tmp_path, f"attestations:\n  T-ATT-001:\n    {answer}\n    by: A. Person\n"
                                   "    date: 2026-10-01\n")
    from harness.engine import run_plan
    from harness.plan import build_plan
    from harness.suites import load_suite
    from harness.targets.export import ExportTarget
    from tests.helpers import AS_OF, write_ndjson
    one_pack_run(tmp_path, ATTESTATION_RULE, PATIENT)  # writes the pack and suite
    plan = build_plan(load_suite(tmp_path / "suite.yaml"), Catalogue([tmp_path / "packs"]), AS_OF, "export",
                      attestations=load_attestations(path))
    result = run_plan(plan, ExportTarget([write_ndjson(tmp_path / "e" / "d.ndjson", PATIENT)]))
    rule = result.rule("T-ATT-001")
    assert rule.outcome.value == outcome
    if outcome == "pass":
        assert "case.pdf (sha256" in (rule.message or "")


def test_unanswered_attestation_is_manual_never_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    result = one_pack_run(tmp_path, ATTESTATION_RULE, PATIENT)
    assert result.rule("T-ATT-001").outcome.value == "manual"


def test_bad_attestations_file_names_file_and_line(tmp_path: Path) -> None:
    path = _attestations(tmp_path, "attestations:\n  T-ATT-001:\n    answer: yes\n    by: A. Person\n"
                                   "    date: 2026-10-01\n    evidence: [missing.pdf]\n")
    with pytest.raises(ConfigurationError) as err:
        load_attestations(path)
    assert f"{path}:6" in str(err.value.problems[0]) and "missing.pdf" in str(err.value.problems[0])
    path.write_text("attestations:\n  T-ATT-001:\n    answer: perhaps\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as err:
        load_attestations(path)
    assert any(f"{path}:3" in str(p) for p in err.value.problems)


def test_reference_attestations_answer_every_attestation_rule_of_the_core_suite() -> None:
    catalogue = Catalogue.default()
    wanted = {r.id for r in catalogue.rules_for(catalogue.suite("asl-dscr-core")) if r.kind == "attestation"}
    assert wanted and set(load_attestations(REFERENCE_ATTESTATIONS).answers) == wanted


def test_core_suite_without_attestations_cannot_pass(tmp_path_factory: pytest.TempPathFactory,
                                                     tmp_path: Path) -> None:
    export = reference_export(tmp_path_factory, 6, 5)
    res = cli("run", "asl-dscr-core", "--export", export, "--out", tmp_path, "--as-of", "2026-11-01", code=1,
              env={ENV: ""})
    assert "DSCR-ATT-CSO-001 (MUST, manual)" in res.output


# -- the roadmap ---------------------------------------------------------------------------------------------

def test_roadmap_rules_apply_from_their_date(tmp_path_factory: pytest.TempPathFactory) -> None:
    export = reference_export(tmp_path_factory, 6, 5)
    today = run_suite(export, "asl-dscr-roadmap", as_of=dt.date(2026, 11, 23))
    assert today.decision.outcome == "pass"
    later = run_suite(export, "asl-dscr-roadmap", as_of=dt.date(2027, 10, 1))
    failing = {r.rule for r in later.result.rules if not r.outcome.counts_as_met}
    assert failing == {"RM-BIRTHSEX-001"}  # the reference records no birth sex; trace status it already has


BIRTH_SEX = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-BirthSex"
TRACE = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"


@pytest.mark.parametrize(("rule", "conforming", "violating"), [
    ("RM-BIRTHSEX-001",
     {"extension": [{"url": BIRTH_SEX, "valueCodeableConcept": {"text": "Female"}}]}, {}),
    ("RM-TRACE-001",
     {"identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009",
                      "extension": [{"url": TRACE, "valueCodeableConcept": {"text": "verified"}}]}]},
     {"identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}]}),
])
def test_roadmap_data_rules_conforming_and_violating(tmp_path: Path, rule: str, conforming: dict[str, Any],
                                                     violating: dict[str, Any]) -> None:
    text = (standards_dir() / "dscr" / "roadmap.yaml").read_text(encoding="utf-8")
    block = text[text.index(f"  - id: {rule}"):]
    block = block[: block.find("\n  - id:", 10) + 1 or None]
    yaml_rule = "\n".join(line[2:] for line in block.splitlines()).replace("standard: SCIP-MODS", "standard: T")
    yaml_rule = yaml_rule.replace("effective_from: 2027-10-01", "effective_from: 2020-01-01")
    for body, expected in ((conforming, "pass"), (violating, "fail")):
        case = tmp_path / expected
        case.mkdir()
        result = one_pack_run(case, yaml_rule + "\n", [{"resourceType": "Patient", "id": "p", **body}])
        assert result.rule(rule).outcome.value == expected


def test_transfer_operation_expectation() -> None:
    class Result:
        status = 200
        content_type = "application/fhir+json"

        def __init__(self, body: dict[str, Any]) -> None:
            self.json = body
            self.body = json.dumps(body).encode()
            self.headers: dict[str, str] = {}
    declared = {"resourceType": "CapabilityStatement", "rest": [{"resource": [
        {"type": "Patient", "operation": [{"name": "transfer", "definition": "https://example.org/op"}]}]}]}
    missing = {"resourceType": "CapabilityStatement", "rest": [{"resource": [{"type": "Patient"}]}]}
    expect = {"declares_operation": "transfer"}
    assert list(_expectations(expect, Result(declared), {})) == []
    assert list(_expectations(expect, Result(missing), {})) == ["the CapabilityStatement does not declare the "
                                                                 "$transfer operation"]


# -- diffs ---------------------------------------------------------------------------------------------------

def test_suites_diff_shows_what_comes_into_force() -> None:
    res = cli("suites", "diff", "asl-dscr-roadmap", "--as-of", "2026-11-23", "--to", "2027-10-01", "--json")
    changes = json.loads(res.output)
    assert {(c["rule"], c["change"]) for c in changes} == {
        ("RM-BIRTHSEX-001", "added"), ("RM-TRACE-001", "added"), ("RM-TRANSFER-001", "added")}
    res = cli("suites", "diff", "uk-core-base", "asl-dscr-core", "--as-of", "2026-11-23", "--json")
    kinds = {c["change"] for c in json.loads(res.output)}
    assert kinds == {"added", "removed"}


def test_packs_diff_names_added_removed_and_changed_rules(tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(standards_dir() / "identifiers", old)
    new = tmp_path / "new"
    shutil.copytree(old, new)
    pack = new / "nhs-number.yaml"
    text = pack.read_text(encoding="utf-8")
    text = text.replace("  - id: NHSNO-VER-001\n    title: Each NHS number carries a verification status\n"
                        "    level: SHOULD", "  - id: NHSNO-VER-001\n    title: Each NHS number carries a "
                        "verification status\n    level: MUST")
    start = text.index("  - id: NHSNO-CHK-002")
    end = text.index("  - id:", start + 5)
    text = text[:start] + text[end:]
    pack.write_text(text, encoding="utf-8")
    (new / "extra.yaml").write_text(
        "pack: t.extra\ntitle: t\nversion: 1.0.0\nstandards: [{id: T, title: T, version: '1'}]\nrules:\n"
        "  - {id: T-NEW-001, title: new, level: SHOULD, standard: T, clause: c, applies_to: [export],\n"
        "     effective_from: 2027-01-01, resource: Patient, select: gender, check: {kind: cardinality, min: 1},\n"
        "     remediation: r}\n", encoding="utf-8")
    changes = {c["rule"]: c for c in json.loads(cli("packs", "diff", old, new, "--json").output)}
    assert set(changes) == {"NHSNO-VER-001", "NHSNO-CHK-002", "T-NEW-001"}
    assert changes["NHSNO-VER-001"]["change"] == "changed"
    assert changes["NHSNO-VER-001"]["details"] == ["level SHOULD -> MUST"]
    assert changes["NHSNO-CHK-002"]["change"] == "removed" and changes["T-NEW-001"]["change"] == "added"
    res = cli("packs", "diff", old, tmp_path / "nowhere", code=2)
    assert "no such pack file or directory" in res.output


def test_live_data_suite_flags_test_range_numbers_only_there(tmp_path_factory: pytest.TempPathFactory) -> None:
    export = reference_export(tmp_path_factory, 6, 5)  # synthetic: every NHS number is in the 999 test range
    live = run_suite(export, "live-data")
    rng = live.result.rule("NHSNO-RNG-001")
    assert rng.outcome.value == "fail" and rng.failed == 6
    assert {f.resource_id for f in rng.findings} == {f"resident-{i:04d}" for i in range(6)}
    numbers = [json.loads(line)["identifier"][0]["value"]
               for line in (export / "Patient.ndjson").read_text(encoding="utf-8").splitlines()]
    assert not any(n in f.message for n in numbers for f in rng.findings)  # never quotes the number
    assert "NHSNO-RNG-001" not in {r.rule for r in run_suite(export).result.rules}  # not an assurance rule
    issued = tmp_path_factory.mktemp("issued") / "Patient.ndjson"
    issued.write_text(json.dumps({"resourceType": "Patient", "id": "p", "identifier": [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]}) + "\n", encoding="utf-8")
    assert run_suite(issued, "live-data").result.rule("NHSNO-RNG-001").outcome.value == "pass"
