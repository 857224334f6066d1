"""Conforming and violating resources generated from the R4 definitions, one per thing the compiler checks.

Every R4 resource type gets its smallest valid instance (``tests/fhir_instances.py``); then, for
each binding strength, cardinality kind and constraint key the compiler supports, one defect is
injected and exactly that problem — family, severity and key — must be reported.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.fhir.model import r4
from harness.fhir.validator import Violation, validate
from tests.fhir_instances import (
    CONSTRAINT_FILLS,
    REDUNDANT,
    conforming,
    required_choices,
    required_codes,
    required_elements,
    value_of,
)

TYPES = sorted(r4().resource_types)
CARE_TYPES = ["Patient", "Practitioner", "RelatedPerson", "Organization", "Location", "CarePlan", "CareTeam",
              "AllergyIntolerance", "MedicationStatement", "MedicationAdministration", "Observation", "Flag",
              "Condition", "Encounter", "EpisodeOfCare", "QuestionnaireResponse", "Provenance", "Task",
              "Communication", "Consent", "DocumentReference"]


def _errors(resource: dict[str, Any]) -> list[Violation]:
    return [v for v in validate(resource).violations if not v.warning]


@pytest.mark.parametrize("rtype", TYPES)
def test_the_smallest_valid_resource_of_every_type_is_valid(rtype: str) -> None:
    assert _errors(conforming(rtype)) == []


@pytest.mark.parametrize("key", sorted(CONSTRAINT_FILLS.keys() - REDUNDANT))
def test_each_resource_constraint_fails_alone_when_its_data_is_missing(key: str) -> None:
    rtype = CONSTRAINT_FILLS[key][0]
    found = {(v.family, v.key) for v in _errors(conforming(rtype, leave_out=key))}
    assert found == {("invariant", key)}


@pytest.mark.parametrize("rtype", [t for t in CARE_TYPES if required_codes(t)])
def test_a_code_outside_a_required_value_set_is_a_binding_error(rtype: str) -> None:
    element = required_codes(rtype)[0]
    resource = conforming(rtype)
    resource[element] = "not-a-code"
    found = _errors(resource)
    assert [(v.family, v.path) for v in found] == [("binding", f"{rtype}.{element}")]
    assert "is not in the required value set" in found[0].message


@pytest.mark.parametrize("rtype", [t for t in CARE_TYPES if required_elements(t)])
def test_a_missing_required_element_is_a_cardinality_error(rtype: str) -> None:
    element = required_elements(rtype)[0]
    resource = conforming(rtype)
    del resource[element]
    assert [(v.family, v.path) for v in _errors(resource)] == [("cardinality", f"{rtype}.{element}")]


CHOICES = [(t, b, n) for t in CARE_TYPES for b, n in required_choices(t)]


def _other_variant(rtype: str, base: str, variant: str) -> str:
    return next(n for n, i in r4().children((rtype, "")).items()
                if i.choice and i.choice.rsplit(".", 1)[-1] == base and n != variant)


@pytest.mark.parametrize(("rtype", "base", "variant"), CHOICES)
def test_a_required_choice_element_needs_one_of_its_types(rtype: str, base: str, variant: str) -> None:
    missing = conforming(rtype)
    del missing[variant]
    assert [(v.family, v.path) for v in _errors(missing)] == [("cardinality", f"{rtype}.{base}[x]")]


@pytest.mark.parametrize(("rtype", "base", "variant"), CHOICES)
def test_a_choice_element_takes_only_one_of_its_types(rtype: str, base: str, variant: str) -> None:
    both = conforming(rtype)
    other = _other_variant(rtype, base, variant)
    both[other] = value_of(r4().children((rtype, ""))[other])
    assert [v.family for v in _errors(both)] == ["cardinality"]


def test_an_extensible_binding_is_a_warning_only_within_its_code_system() -> None:
    patient = conforming("Patient")
    system = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    patient["maritalStatus"] = {"coding": [{"system": system, "code": "ZZ"}]}
    found = validate(patient).violations
    assert [(v.family, v.warning, v.key) for v in found] == [
        ("binding", True, "http://hl7.org/fhir/ValueSet/marital-status")]
    patient["maritalStatus"] = {"coding": [{"system": "http://example.org/local", "code": "ZZ"}]}
    assert validate(patient).violations == []


CONTAINED_ORG = {"resourceType": "Organization", "id": "o1", "name": "x"}
NATIVE_DEFECTS: dict[str, tuple[str, Any, bool]] = {
    # key: (family, mutation of a valid Patient, warning?)
    "dom-2": ("invariant", lambda p: p.update(contained=[{**CONTAINED_ORG,
                                                           "contained": [{**CONTAINED_ORG, "id": "o2"}]}],
                                               managingOrganization={"reference": "#o1"}), False),
    "dom-3": ("invariant", lambda p: p.update(contained=[CONTAINED_ORG]), False),
    "dom-4": ("invariant", lambda p: p.update(contained=[{**CONTAINED_ORG, "meta": {"versionId": "1"}}],
                                               managingOrganization={"reference": "#o1"}), False),
    "dom-5": ("invariant", lambda p: p.update(contained=[{**CONTAINED_ORG, "meta": {"security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}}],
        managingOrganization={"reference": "#o1"}), False),
    "dom-6": ("invariant", lambda p: p.pop("text"), True),
    "txt-1": ("invariant", lambda p: p.update(text={"status": "generated", "div": (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">x</p></div>')}), False),
    "txt-2": ("invariant", lambda p: p.update(text={"status": "generated",
                                                     "div": '<div xmlns="http://www.w3.org/1999/xhtml"> </div>'}),
              False),
    "ext-1": ("invariant", lambda p: p.update(extension=[{"url": "http://example.org/e", "valueString": "x",
                                                           "extension": [{"url": "a", "valueString": "y"}]}]),
              False),
    "ref-1": ("reference", lambda p: p.update(managingOrganization={"reference": "#missing"}), False),
    "per-1": ("invariant", lambda p: p.update(name=[{"family": "x", "period": {
        "start": "2024-02-01", "end": "2024-01-01"}}]), False),
}


@pytest.mark.parametrize("key", sorted(NATIVE_DEFECTS))
def test_each_universal_constraint_fails_alone(key: str) -> None:
    family, mutate, warning = NATIVE_DEFECTS[key]
    patient = copy.deepcopy(conforming("Patient"))
    mutate(patient)
    found = {(v.family, v.key, v.warning) for v in validate(patient).violations}
    # a resource nested in a contained one is also referred to by nothing its container can see (dom-3)
    also = {("invariant", "dom-3", False)} if key == "dom-2" else set()
    assert found == {(family, key, warning)} | also


def test_range_constraint_rng_2() -> None:
    observation = conforming("Observation")
    observation["valueRange"] = {"low": {"value": 5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
                                 "high": {"value": 2, "unit": "mg", "system": "http://unitsofmeasure.org",
                                          "code": "mg"}}
    assert {(v.family, v.key) for v in _errors(observation)} == {("invariant", "rng-2")}
