"""The strategies' own tests: valid datasets meet every rule; each violation fails exactly its rule.

These also test the packs: a rule that passed a violation, or failed valid data, is wrong.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from harness.attestations import load_attestations
from harness.engine import Run
from harness.identifiers import NHS_NUMBER_SYSTEM, nhs_number_problem
from harness.plan import build_plan
from harness.properties.strategies import binding_codes, birth_dates, datasets, date_times, name_parts, nhs_numbers
from harness.properties.violations import ALSO_FAILS, VIOLATIONS, violating_datasets
from harness.results import Location, Outcome
from harness.suites import Catalogue
from harness.targets.base import Located
from tests.conftest import REFERENCE_ATTESTATIONS
from tests.helpers import AS_OF

MET = (Outcome.PASS, Outcome.NOT_APPLICABLE)
CATALOGUE = Catalogue.default()
PLAN = build_plan(CATALOGUE.suite("asl-dscr-core"), CATALOGUE, AS_OF, "export",
                  attestations=load_attestations(REFERENCE_ATTESTATIONS))
# data rules (attestations are answered, not data); the UK Core rules generated from the definitions
# get violations built from their own parameters in tests/test_uk_core_packs.py
EXPORT_RULES = sorted(cr.rule.id for cr in PLAN.rules
                      if cr.rule.kind != "attestation" and not cr.rule.pack.startswith("uk-core."))
binding_codes("NHSNO-VER-002")  # load the packs before Hypothesis times anything
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(data: list[dict[str, Any]]) -> Any:
    run = Run(PLAN)
    run.feed(Located(r, Location("generated.ndjson", i + 1)) for i, r in enumerate(data))
    return run.finish([], "export", True)


@SETTINGS
@given(datasets(max_residents=5, test_range=False))
def test_valid_datasets_meet_every_rule(data: list[dict[str, Any]]) -> None:
    result = _run(data)
    assert [(r.rule, r.message, [f.message for f in r.findings[:2]]) for r in result.rules
            if r.outcome not in MET] == []


# Rules an NDJSON dataset cannot break: the Bundle rules need Bundle entries. Their defects are
# tested on HL7's validator cases (test_fhir_conformance) and the reference supplier's Bundle export.
BUNDLE_ONLY = {"FHIR-REF-003"}
# Declared-profile conformance needs the profile's package (--package-dir): tested in test_profiles.
NEEDS_PACKAGE = {"FHIR-PROF-001"}


def test_every_rule_of_the_suite_can_be_violated() -> None:
    assert set(EXPORT_RULES) - {"HARNESS-READ-001"} - BUNDLE_ONLY - NEEDS_PACKAGE == set(VIOLATIONS)


@pytest.mark.parametrize("rule", sorted(VIOLATIONS))
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_violation_fails_exactly_its_rule(rule: str, data: st.DataObject) -> None:
    dataset, subjects = data.draw(violating_datasets(rule))
    result = _run(dataset)
    assert {r.rule for r in result.rules if r.outcome not in MET} == {rule, *ALSO_FAILS.get(rule, ())}
    assert {(f.resource_type, f.resource_id) for f in result.rule(rule).findings} == subjects


def test_unknown_rule_cannot_be_violated() -> None:
    with pytest.raises(ValueError, match="no known way to violate NOPE-001"):
        violating_datasets("NOPE-001")


def test_generation_follows_the_packs() -> None:
    system, codes = binding_codes("NHSNO-VER-002")
    assert system == "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
    assert codes == ("01", "02", "03", "04", "05", "06", "07", "08")
    with pytest.raises(ValueError, match="no binding rule"):
        binding_codes("NHSNO-CHK-001")


def test_edge_cases_are_reachable() -> None:
    """The strategies do reach the cases that break real systems."""
    assert any(unicodedata.category(c) == "Mn" for c in find(
        name_parts(), lambda s: any(unicodedata.category(c) == "Mn" for c in s)))
    assert "'" in find(name_parts(), lambda s: "'" in s)
    assert find(name_parts(), lambda s: len(s) == 1)
    assert find(name_parts(), lambda s: len(s) > 40)
    assert find(name_parts(), lambda s: any(ord(c) > 0x3000 for c in s))
    assert find(birth_dates(), lambda d: d.endswith("-02-29"))
    assert find(birth_dates(), lambda d: len(d) == 4)
    assert find(birth_dates(), lambda d: len(d) == 7)
    assert find(date_times(), lambda d: d.endswith("+05:30"))
    assert find(nhs_numbers(), lambda n: n.startswith("4")) and find(nhs_numbers(), lambda n: n.startswith("01"))


@SETTINGS
@given(nhs_numbers(), nhs_numbers(test_range=True))
def test_generated_nhs_numbers_are_valid(anywhere: str, test: str) -> None:
    assert nhs_number_problem(anywhere) is None and nhs_number_problem(test) is None
    assert test.startswith("999") and re.fullmatch(r"\d{10}", anywhere)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # generation is slow on a loaded machine
@given(datasets(max_residents=4))
def test_generated_datasets_use_only_test_range_nhs_numbers(data: list[dict[str, Any]]) -> None:
    numbers = [i["value"] for r in data for i in r.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM]
    assert numbers and all(n.startswith("999") for n in numbers)
