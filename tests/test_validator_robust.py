"""The compiled validator on hostile shapes: mutated R4 and UK Core examples never crash it."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigurationError
from harness.fhir.model import r4
from harness.fhir.package import read_resource
from harness.fhir.profiles import check_profile, profile_for
from harness.fhir.validator import FAMILIES, Outcome, validate
from harness.terminology import Terminology
from tests.conftest import DATA
from tests.fhir_instances import mutants_of

REPLACEMENTS: list[Any] = ["", [], {}, 123, -1.5, True, None, "bad value!", {"foo": 1}, [None], [[]]]


@cache
def _examples() -> list[dict[str, Any]]:
    r4_examples = [json.loads(f.read_text(encoding="utf-8"))
                   for f in sorted((DATA / "fhir-r4" / "examples").glob("*.json"))]
    uk = []
    for f in sorted((DATA / "ukcore-stu2" / "examples").glob("*.xml")):
        try:
            resource = read_resource(f, r4().resource_types)
        except ConfigurationError:
            continue  # the examples written without the FHIR namespace
        if resource:
            uk.append(resource)
    return r4_examples + uk


@cache
def _package() -> Terminology:
    return Terminology.from_directory(DATA / "ukcore-stu2")


def _change(draw: st.DrawFn, parent: Any, key: Any) -> None:
    action = draw(st.sampled_from(["replace", "delete", "wrap", "companion", "unknown"]))
    if action == "delete" and isinstance(parent, dict):
        del parent[key]
    elif action == "wrap":
        parent[key] = [parent[key]]
    elif action == "companion" and isinstance(parent, dict):
        companion = draw(st.sampled_from([*REPLACEMENTS, {"extension": [{"url": "http://x"}]}]))
        parent[f"_{key}"] = copy.deepcopy(companion)
    elif action == "unknown" and isinstance(parent, dict):
        parent["valueString" if "valueQuantity" in parent else "stauts"] = "x"
    else:
        parent[key] = copy.deepcopy(draw(st.sampled_from(REPLACEMENTS)))


def mutants() -> st.SearchStrategy[dict[str, Any]]:
    return mutants_of(_examples, _change, rounds=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(mutants())
def test_mutated_examples_never_crash_the_validator(resource: dict[str, Any]) -> None:
    outcome = validate(resource)
    assert all(v.family in FAMILIES and v.message and v.path for v in outcome.violations)
    url = f"https://fhir.hl7.org.uk/StructureDefinition/UKCore-{resource.get('resourceType')}"
    if url in _package().structure_definitions:
        profiled = Outcome()
        check_profile(resource, profile_for(url, _package()), _package(), profiled)
        assert all(v.family in FAMILIES for v in profiled.violations)


def test_a_mutation_is_seen() -> None:
    """The property is not vacuous: a broken example does give findings."""
    patient = copy.deepcopy(next(r for r in _examples() if r["resourceType"] == "Patient"))
    patient["gender"] = ["male"]
    assert any(v.family == "structure" and v.path == "Patient.gender" for v in validate(patient).violations)


def test_generated_walk_is_readable_and_specialised() -> None:
    """The hot path is generated per element state; its source can be read and names the elements it checks."""
    from harness.fhir.codegen import source_of
    from harness.fhir.validator import node

    text = source_of(node(("Patient", "")).walk)
    assert "obj.get('gender')" in text and "obj.get('birthDate')" in text
    assert "check_code" in text  # gender's required binding, checked inline
