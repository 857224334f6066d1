"""Pack loading and lint: every problem is reported with file, line and rule id."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigurationError
from harness.packs.loader import lint_paths, load_pack
from harness.paths import standards_dir
from harness.suites import Catalogue

HEADER = """\
pack: test.lint
title: Lint test
version: 1.0.0
standards: [{id: T, title: Test, version: '1'}]
rules:
"""
GOOD_RULE = """\
  - id: T-GOOD-001
    title: fine
    level: MUST
    standard: T
    clause: c
    applies_to: [export]
    effective_from: 2020-01-01
    resource: Patient
    select: name
    check: {kind: cardinality, min: 1}
    remediation: r
"""


def write(tmp_path: Path, text: str, name: str = "pack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def messages(tmp_path: Path) -> list[str]:
    _, problems = lint_paths([tmp_path])
    return [str(p).replace(str(tmp_path) + "/", "") for p in problems]


def test_installed_packs_lint_clean_and_hash() -> None:
    packs, problems = lint_paths([standards_dir()])
    assert problems == []
    assert len(packs) >= 5
    for pack in packs:
        assert len(pack.sha256) == 64
        for rule in pack.rules:
            assert rule.clause and rule.remediation and rule.standard.version


def test_rule_ids_are_unique_and_stable() -> None:
    """Ids are the interface: a test fails when one disappears."""
    ids = {r.id for p in Catalogue.default().packs().values() for r in p.rules}
    for expected in ("NHSNO-FMT-001", "NHSNO-CHK-001", "NHSNO-UNQ-001", "ODS-FMT-001", "SCT-FMT-001",
                     "FHIR-STRUCT-001", "FHIR-REF-001", "DSCR-CP-001", "DMD-SYS-001"):
        assert expected in ids


def test_pack_hash_changes_with_content(tmp_path: Path) -> None:
    a = load_pack(write(tmp_path, HEADER + GOOD_RULE, "a.yaml"))
    b = load_pack(write(tmp_path, HEADER + GOOD_RULE.replace("title: fine", "title: finer"), "b.yaml"))
    assert a.sha256 != b.sha256


def test_semantic_problems_are_all_reported_with_line_and_rule(tmp_path: Path) -> None:
    bad = GOOD_RULE + GOOD_RULE.replace("check: {kind: cardinality, min: 1}", "check: {kind: nhs_numbr}") \
        + GOOD_RULE.replace("T-GOOD-001", "T-BAD-002").replace("resource: Patient", "resource: Patiant") \
        + GOOD_RULE.replace("T-GOOD-001", "T-BAD-003").replace("select: name", "select: \"name.where(\"") \
        + GOOD_RULE.replace("T-GOOD-001", "T-BAD-004").replace("select: name", "select: name.foo(1, 2, 3)") \
        + GOOD_RULE.replace("T-GOOD-001", "T-BAD-005").replace("standard: T", "standard: TT")
    write(tmp_path, HEADER + bad)
    found = messages(tmp_path)
    assert found[0] == "pack.yaml:17: [T-GOOD-001] duplicate rule id (first defined on line 6)"
    assert "pack.yaml:26: [T-GOOD-001] unknown check kind 'nhs_numbr' — did you mean 'nhs-number'?" in found
    assert "pack.yaml:35: [T-BAD-002] unknown resource type 'Patiant' — did you mean 'Patient'?" in found
    assert any(m.startswith("pack.yaml:47: [T-BAD-003] select: FHIRPath does not parse") for m in found)
    assert any(m.startswith("pack.yaml:58: [T-BAD-004] select: FHIRPath does not evaluate") for m in found)
    assert "pack.yaml:64: [T-BAD-005] standard 'TT' is not declared in this pack — did you mean 'T'?" in found
    assert len(found) == 6


def test_schema_problems_name_line_and_rule(tmp_path: Path) -> None:
    write(tmp_path, HEADER + GOOD_RULE.replace("level: MUST", "level: MUSTN'T").replace("remediation: r\n", ""))
    found = messages(tmp_path)
    assert "pack.yaml:6: [T-GOOD-001] rules/0: 'remediation' is a required property" in found
    assert "pack.yaml:8: [T-GOOD-001] rules/0/level: \"MUSTN'T\" is not one of ['MUST', 'SHOULD', 'MAY']" in found


def test_check_parameters_are_schema_checked(tmp_path: Path) -> None:
    write(tmp_path, HEADER + GOOD_RULE.replace("{kind: cardinality, min: 1}", "{kind: cardinality, minimum: 1}"))
    assert messages(tmp_path) == [
        "pack.yaml:15: [T-GOOD-001] check: check: Additional properties are not allowed ('minimum' was unexpected)"]


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    write(tmp_path, HEADER + GOOD_RULE + "  - id: [unclosed\n")
    found = messages(tmp_path)
    assert len(found) == 1 and found[0].startswith("pack.yaml:18: YAML syntax")


def test_duplicate_ids_across_packs(tmp_path: Path) -> None:
    write(tmp_path, HEADER + GOOD_RULE, "a.yaml")
    write(tmp_path, HEADER.replace("test.lint", "test.other") + GOOD_RULE, "b.yaml")
    assert messages(tmp_path) == ["b.yaml:6: [T-GOOD-001] rule id 'T-GOOD-001' is also defined in a.yaml:6"]


def test_load_pack_raises_with_all_problems(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + GOOD_RULE.replace("resource: Patient", "resource: Nope"))
    with pytest.raises(ConfigurationError, match="unknown resource type 'Nope'"):
        load_pack(path)


def test_element_names_are_checked_against_the_definitions(tmp_path: Path) -> None:
    """A typo in an element name makes a rule that can never fail: lint says so, with the nearest name."""
    typo = GOOD_RULE.replace("resource: Patient", "resource: CarePlan").replace(
        "select: name", "select: stauts\n    where: \"activity.where(detail.kindd = 'Task').exists()\"")
    nested = GOOD_RULE.replace("T-GOOD-001", "T-BAD-002").replace(
        "select: name", "select: \"identifier.where(sytem = 'x').value\"")
    fine = GOOD_RULE.replace("T-GOOD-001", "T-OK-003").replace(
        "select: name", "select: \"deceased.ofType(boolean) | name.given | telecom.where(system = 'phone').value\"")
    write(tmp_path, HEADER + typo + nested + fine)
    found = messages(tmp_path)
    assert found == [
        "pack.yaml:14: [T-GOOD-001] select: element 'stauts' does not exist on CarePlan, so the rule can "
        "never fail — did you mean 'status'?",
        "pack.yaml:15: [T-GOOD-001] where: element 'kindd' does not exist on CarePlan.activity.detail, so the "
        "rule can never fail — did you mean 'kind'?",
        "pack.yaml:26: [T-BAD-002] select: element 'sytem' does not exist on Identifier, so the rule can never "
        "fail — did you mean 'system'?",
    ]
