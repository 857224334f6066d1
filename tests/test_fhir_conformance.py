"""HL7's own validator test cases through the fhir-r4-base suite, compared with the Java validator.

Each case file is one run of the suite on that file as an export; the suite's decision (pass or
fail) is compared with ``java_valid``. Agreement must be at least 95 %, and every disagreement
is listed, with its reason, in ``tests/data/fhir-conformance-disagreements.yaml``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
import yaml

from harness.runner import assess
from harness.targets.export import ExportTarget
from tests.conftest import DATA
from tests.helpers import AS_OF

CASES_DIR = DATA / "fhir-test-cases-r4"
DISAGREEMENTS = Path(__file__).parent / "data" / "fhir-conformance-disagreements.yaml"


def _cases() -> list[dict[str, object]]:
    cases: list[dict[str, object]] = json.loads((CASES_DIR / "manifest.json").read_text(encoding="utf-8"))["cases"]
    return cases


@cache
def _verdict(file: str) -> bool:
    a = assess("fhir-r4-base", ExportTarget([CASES_DIR / file]), as_of=AS_OF)
    crashes = [f for r in a.result.rules for f in r.findings if f.code == "exception"]
    assert crashes == [], crashes
    return a.decision.outcome == "pass"


def _disagreeing() -> set[str]:
    return {str(c["name"]) for c in _cases() if _verdict(str(c["file"])) != c["java_valid"]}


def test_agreement_with_the_java_validator_is_at_least_95_percent() -> None:
    cases = _cases()
    assert len(cases) == 67
    agree = len(cases) - len(_disagreeing())
    assert agree / len(cases) >= 0.95, f"{agree}/{len(cases)} agree"


def test_every_disagreement_is_listed_with_its_reason() -> None:
    listed = yaml.safe_load(DISAGREEMENTS.read_text(encoding="utf-8"))
    assert all(isinstance(why, str) and len(why) > 40 for why in listed.values())
    assert _disagreeing() == set(listed), "update tests/data/fhir-conformance-disagreements.yaml"


@pytest.mark.parametrize(("name", "expected"), [
    ("bundle-duplicate-id", "the fullUrl must be an absolute URL (not 'Patient/1')"),
    ("bad-bundle-reference-type-4", "is a Organization, not a Practitioner"),
    ("list-xhtml-empty", "constraint txt-2 failed"),
    ("empty-array", "array cannot be empty"),
    ("resource-invalid-id-3", "'org_1' is not a valid id"),
    ("maiden-name-extension", "is not allowed here (allowed on: HumanName.family"),
    ("ai7", "StructureDefinition.name: minimum required = 1, but none found"),
    ("synthea", "the value 'completed' is not in the required value set 'EncounterStatus'"),
])
def test_invalid_cases_fail_for_the_java_validators_reason(name: str, expected: str) -> None:
    """Not only the verdict: the finding says what the Java validator says, in our words."""
    case = next(c for c in _cases() if c["name"] == name)
    a = assess("fhir-r4-base", ExportTarget([CASES_DIR / str(case["file"])]), as_of=AS_OF)
    messages = [f.message for r in a.result.rules for f in r.findings]
    assert any(expected in m for m in messages), messages
