"""The UK Core STU2 examples through the first suite: no crash, and the known defects found."""

from __future__ import annotations

from harness.results import Outcome
from tests.conftest import DATA
from tests.helpers import run_suite


def test_uk_core_examples_run_and_known_defects_are_reported() -> None:
    a = run_suite(DATA / "ukcore-stu2" / "examples")
    # no check crashed on real-world shapes
    crashes = [f for r in a.result.rules for f in r.findings if f.code == "exception"]
    assert crashes == []
    # the BabyPatient example's NHS number fails modulus 11 (should end in 6)
    chk = a.result.rule("NHSNO-CHK-001")
    assert chk.outcome == Outcome.FAIL
    assert ("Patient", "UKCore-Patient-BabyPatient-Example") in {(f.resource_type, f.resource_id) for f in chk.findings}
    assert all(f.location and f.location.file and f.location.line for f in chk.findings)
    # the dm+d coding with a trailing slash is caught
    dmd = a.result.rule("DMD-SYS-001")
    assert dmd.outcome == Outcome.FAIL
    assert any("https://dmd.nhs.uk/" in f.message for f in dmd.findings)
    # the examples written without the FHIR namespace cannot be read: an error, never skipped
    assert a.result.rule("HARNESS-READ-001").outcome == Outcome.ERROR
    assert a.decision.outcome == "fail"


def test_uk_core_examples_are_structurally_valid_r4_apart_from_known_issues() -> None:
    a = run_suite(DATA / "ukcore-stu2" / "examples")
    structure = a.result.rule("FHIR-STRUCT-001")
    assert structure.subjects >= 125
    # every official example that can be read is valid base R4
    assert structure.failed == 0, [f"{f.resource_id}: {f.path}: {f.message}" for f in structure.findings]
    # its references really do point outside the example set (e.g. ids without a type)
    refs = a.result.rule("FHIR-REF-001")
    assert refs.outcome == Outcome.FAIL
    assert "reference 'UKCore-Observation-Group-FullBloodCount-Example' does not resolve" in " ".join(
        f.message for f in refs.findings)
