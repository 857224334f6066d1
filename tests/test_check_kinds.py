"""Every check kind, through the real engine, on small hand-made resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checks.dataset import references_by_pattern, references_in
from harness.results import Location, Outcome, RunResult
from harness.targets.base import Located
from harness.terminology import Terminology
from tests.conftest import DATA
from tests.helpers import one_pack_run, rule_yaml

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def patient(pid: str, nhs: str | None = None, **extra: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"resourceType": "Patient", "id": pid, **extra}
    if nhs is not None:
        p["identifier"] = [{"system": NHS, "value": nhs}]
    return p


def outcome(result: RunResult, rule: str = "T-RULE-001") -> tuple[Outcome, list[tuple[str | None, str]]]:
    r = result.rule(rule)
    return r.outcome, [(f.resource_id, f.message) for f in r.findings]


SELECT_NHS = "\"identifier.where(system = 'https://fhir.nhs.uk/Id/nhs-number').value\""


def test_nhs_number_checks(tmp_path: Path) -> None:
    rules = rule_yaml(select=SELECT_NHS, check="{kind: nhs-number}")
    result = one_pack_run(tmp_path, rules, [
        patient("good", "9434765919"), patient("bad", "9434765918"), patient("spaces", "943 476 5919"),
        patient("none"), {"resourceType": "Patient", "id": "sds",
                          "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "9999999998"}]},
    ])
    got, findings = outcome(result)
    assert got == Outcome.FAIL
    assert findings == [
        ("bad", "NHS number fails the modulus 11 check: the check digit does not match"),
        ("spaces", "NHS number is not exactly ten digits with no spaces or separators"),
    ]
    # the number itself never appears in a finding
    assert all("9434765918" not in m for _, m in findings)


def test_nhs_number_policy_checks(tmp_path: Path) -> None:
    rules = rule_yaml(select=SELECT_NHS, check="{kind: nhs-number, checks: [repeated-digits, not-test-range]}")
    result = one_pack_run(tmp_path, rules, [
        patient("same", "4444444444"), patient("test", "9990000018"), patient("real", "9434765919"),
    ])
    got, findings = outcome(result)
    assert got == Outcome.FAIL
    assert [f[0] for f in findings] == ["same", "test"]


def test_pattern_kind_hides_value_unless_asked(tmp_path: Path) -> None:
    rules = rule_yaml(select="name.family", check="{kind: pattern, regex: '[A-Z].*'}")
    result = one_pack_run(tmp_path, rules, [patient("a", name=[{"family": "smith"}]),
                                            patient("b", name=[{"family": "Smith"}])])
    got, findings = outcome(result)
    assert got == Outcome.FAIL
    assert findings == [("a", "value does not match [A-Z].*")]


def test_ods_code_kind(tmp_path: Path) -> None:
    ods = "https://fhir.nhs.uk/Id/ods-organization-code"
    rules = rule_yaml(resource="Organization", select=f"\"identifier.where(system = '{ods}').value\"",
                      check="{kind: ods-code}")
    orgs = [{"resourceType": "Organization", "id": i, "identifier": [{"system": ods, "value": v}]}
            for i, v in (("ok", "VLAXL"), ("lower", "vlaxl"), ("long", "ABCDEFGHIJK"))]
    got, findings = outcome(one_pack_run(tmp_path, rules, orgs))
    assert got == Outcome.FAIL
    assert [f[0] for f in findings] == ["lower", "long"]
    assert "upper case" in findings[0][1]


def test_sctid_kind_checks_only_snomed_codings(tmp_path: Path) -> None:
    rules = rule_yaml(resource="AllergyIntolerance", select="code.coding", check="{kind: sctid}")

    def allergy(aid: str, system: str, code: str) -> dict[str, Any]:
        return {"resourceType": "AllergyIntolerance", "id": aid, "patient": {"reference": "Patient/p"},
                "code": {"coding": [{"system": system, "code": code}]}}

    got, findings = outcome(one_pack_run(tmp_path, rules, [
        allergy("ok", "http://snomed.info/sct", "372687004"),
        allergy("desc", "http://snomed.info/sct", "1480011"),
        allergy("digit", "http://snomed.info/sct", "372687005"),
        allergy("other", "http://example.org/local", "abc"),
    ]))
    assert got == Outcome.FAIL
    assert [f[0] for f in findings] == ["desc", "digit"]


def test_fhirpath_kind_and_empty_policy(tmp_path: Path) -> None:
    rules = rule_yaml(check="{kind: fhirpath, expression: 'active = true', message: not active}")
    got, findings = outcome(one_pack_run(tmp_path, rules, [
        patient("yes", active=True), patient("no", active=False), patient("unset")]))
    assert got == Outcome.FAIL
    assert findings == [("no", "not active"), ("unset", "not active (evaluated to empty)")]


def test_fhirpath_non_boolean_result_is_an_error_never_a_pass(tmp_path: Path) -> None:
    rules = rule_yaml(check="{kind: fhirpath, expression: 'name.given'}")
    result = one_pack_run(tmp_path, rules, [patient("a", name=[{"given": ["A", "B"]}])])
    r = result.rule("T-RULE-001")
    assert r.outcome == Outcome.ERROR
    assert r.errors == 1 and r.findings[0].error


def test_cardinality_kind(tmp_path: Path) -> None:
    rules = rule_yaml(select="name", check="{kind: cardinality, min: 1, max: 1}")
    got, findings = outcome(one_pack_run(tmp_path, rules, [
        patient("zero"), patient("one", name=[{"family": "A"}]),
        patient("two", name=[{"family": "A"}, {"family": "B"}])]))
    assert got == Outcome.FAIL
    assert findings == [("zero", "found 0, at least 1 required"), ("two", "found 2, at most 1 allowed")]


def test_binding_with_pack_codes_handles_code_coding_and_codeableconcept(tmp_path: Path) -> None:
    cs = "http://example.org/cs"
    rules = rule_yaml(select="gender", check="{kind: binding, codes: [male, female]}", rule_id="T-RULE-001")
    rules += rule_yaml(select="maritalStatus", rule_id="T-RULE-002",
                       check=f"{{kind: binding, system: '{cs}', codes: [M, S]}}")
    result = one_pack_run(tmp_path, rules, [
        patient("ok", gender="male",
                maritalStatus={"coding": [{"system": "x", "code": "M"}, {"system": cs, "code": "M"}]}),
        patient("bad", gender="M", maritalStatus={"coding": [{"system": cs, "code": "Q"}]}),
        patient("text", gender="female", maritalStatus={"text": "married"}),
    ])
    assert outcome(result, "T-RULE-001") == (Outcome.FAIL, [("bad", "code 'M' is not in the allowed codes")])
    got, findings = outcome(result, "T-RULE-002")
    assert got == Outcome.FAIL
    assert [f[0] for f in findings] == ["bad", "text"]
    assert "text only" in findings[1][1]


def test_binding_with_value_set_from_uk_core_package(tmp_path: Path) -> None:
    term = Terminology.from_directory(DATA / "ukcore-stu2")
    vs = "https://fhir.hl7.org.uk/ValueSet/UKCore-NHSNumberVerificationStatus"
    cs = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
    rules = rule_yaml(select="maritalStatus.coding", check=f"{{kind: binding, valueset: '{vs}'}}")
    got, findings = outcome(one_pack_run(tmp_path, rules, [
        patient("ok", maritalStatus={"coding": [{"system": cs, "code": "01"}]}),
        patient("bad", maritalStatus={"coding": [{"system": cs, "code": "09"}]}),
        patient("ni", maritalStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                                                 "code": "NI"}]}),
    ], terminology=term))
    assert got == Outcome.FAIL
    assert [f[0] for f in findings] == ["bad"]


def test_binding_to_value_set_without_package_is_an_error(tmp_path: Path) -> None:
    rules = rule_yaml(select="gender", check="{kind: binding, valueset: 'http://example.org/vs'}")
    r = one_pack_run(tmp_path, rules, [patient("a", gender="male")]).rule("T-RULE-001")
    assert r.outcome == Outcome.ERROR
    assert "--package-dir" in (r.message or "")


def test_binding_to_filtered_value_set_is_an_error(tmp_path: Path) -> None:
    term = Terminology()
    term.add({"resourceType": "ValueSet", "url": "http://example.org/vs", "compose": {"include": [
        {"system": "http://snomed.info/sct", "filter": [{"property": "concept", "op": "is-a", "value": "1"}]}]}})
    rules = rule_yaml(select="gender", check="{kind: binding, valueset: 'http://example.org/vs'}")
    r = one_pack_run(tmp_path, rules, [patient("a", gender="male")], terminology=term).rule("T-RULE-001")
    assert r.outcome == Outcome.ERROR
    assert "terminology server" in (r.message or "")


def test_structure_kind(tmp_path: Path) -> None:
    rules = rule_yaml(resource='"*"', check="{kind: structure}")
    got, findings = outcome(one_pack_run(tmp_path, rules, [
        patient("ok", gender="male", birthDate="1950-02-28"),
        patient("bad", birthDate="1950-02-30x"),
        {"resourceType": "Patiant", "id": "typo"},
        {"resourceType": "Observation", "id": "o", "status": "final"},
    ]))
    assert got == Outcome.FAIL
    assert findings == [
        ("bad", "the value is not a valid date (not quoted: it may be personal data)"),
        ("typo", "'Patiant' is not an R4 resource type — did you mean 'Patient'?"),
    ]


@pytest.mark.parametrize(("family", "resource", "expected"), [
    ("cardinality", {"resourceType": "Observation", "id": "o", "status": "final"},
     "Observation.code: minimum required = 1, but none found"),
    ("cardinality", {"resourceType": "MedicationStatement", "id": "m", "status": "active",
                     "subject": {"reference": "Patient/p"}},
     "MedicationStatement.medication[x]: one of its types is required, but none found"),
    ("binding", {"resourceType": "CarePlan", "id": "c", "status": "open", "intent": "plan",
                 "subject": {"reference": "Patient/p"}},
     "the value 'open' is not in the required value set 'RequestStatus' (http://hl7.org/fhir/ValueSet/request-status)"),
    ("reference", {"resourceType": "MedicationStatement", "id": "m", "status": "active",
                   "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Practitioner/w"}},
     "the reference points at a Practitioner, but this element may only refer to Group, Patient"),
    ("invariant", {"resourceType": "Patient", "id": "p", "text": {
        "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>'}},
     "constraint txt-1 failed: element <script> is not allowed in a FHIR narrative"),
    ("invariant", {"resourceType": "Patient", "id": "p",
                   "contained": [{"resourceType": "Organization", "id": "o", "name": "x"}]},
     "constraint dom-3 failed: If the resource is contained in another resource, it SHALL be referred to from "
     "elsewhere in the resource or SHALL refer to the containing resource"),
])
def test_structure_families(tmp_path: Path, family: str, resource: dict[str, Any], expected: str) -> None:
    """Each family rule reports its own kind of problem, and only that family's rule fails."""
    families = ("structure", "cardinality", "binding", "invariant", "reference")
    rules = "\n".join(rule_yaml(rule_id=f"T-{f.upper()}-001", resource='"*"',
                                 check=f"{{kind: structure, family: {f}}}") for f in families)
    result = one_pack_run(tmp_path, rules, [resource])
    outcomes = {f: result.rule(f"T-{f.upper()}-001").outcome for f in families}
    assert outcomes == {f: Outcome.FAIL if f == family else Outcome.PASS for f in families}
    assert [x.message for x in result.rule(f"T-{family.upper()}-001").findings] == [expected]


def test_reference_kind(tmp_path: Path) -> None:
    rules = rule_yaml(resource='"*"', check="{kind: reference, allow_external: ['https://ods.example/']}")
    got, findings = outcome(one_pack_run(tmp_path, rules, [
        patient("p1", managingOrganization={"reference": "Organization/o1"}),
        {"resourceType": "Organization", "id": "o1"},
        patient("p2", managingOrganization={"reference": "Organization/missing"}),
        patient("p2b", managingOrganization={"reference": "Organization/missing"}),
        patient("p3", managingOrganization={"reference": "https://ods.example/Organization/X"}),
        patient("p4", managingOrganization={"reference": "#org"}),
        patient("p5", managingOrganization={"reference": "#org"},
                contained=[{"resourceType": "Organization", "id": "org"}]),
        patient("p6", generalPractitioner=[{"reference": "https://other.example/fhir/Organization/o1"}]),
    ]))
    assert got == Outcome.FAIL
    assert findings == [  # in the order of where they are (file, line), whatever order the checks found them
        ("p2", "reference 'Organization/missing' does not resolve to any resource in the target "
               "(referred to 2 times; the first is shown)"),
        ("p4", "'#org' names no contained resource"),
    ]


def test_reference_counts_stay_exact(tmp_path: Path) -> None:
    rules = rule_yaml(resource='"*"', check="{kind: reference}")
    result = one_pack_run(tmp_path, rules, [patient(f"p{i}", managingOrganization={"reference": "Organization/x"})
                                            for i in range(7)])
    r = result.rule("T-RULE-001")
    assert (r.outcome, r.failed, len(r.findings)) == (Outcome.FAIL, 7, 1)


def test_exists_per_kind(tmp_path: Path) -> None:
    rules = rule_yaml(where="\"active.empty() or active = true\"",
                      check="{kind: exists-per, related: CarePlan, via: subject, related_where: \"status = 'active'\"}")
    plans = [{"resourceType": "CarePlan", "id": f"cp{i}", "status": s, "intent": "plan",
              "subject": {"reference": f"Patient/{p}"}} for i, (p, s) in enumerate(
        [("a", "active"), ("b", "revoked"), ("gone", "active")])]
    got, findings = outcome(one_pack_run(tmp_path, rules, [
        patient("a"), patient("b"), patient("c"), patient("left", active=False), *plans]))
    assert got == Outcome.FAIL
    assert [f[0] for f in findings] == ["b", "c"]


def test_unique_kind(tmp_path: Path) -> None:
    rules = rule_yaml(where="\"active.empty() or active = true\"",
                      check=f"{{kind: unique, key: {SELECT_NHS}, label: NHS number}}")
    result = one_pack_run(tmp_path, rules, [
        patient("a", "9434765919"), patient("b", "9434765919"), patient("c", "9434765919", active=False),
        patient("d", "9990000018")])
    got, findings = outcome(result)
    assert got == Outcome.FAIL
    assert findings == [("a", "NHS number is the same as on Patient/b (data.ndjson:2)"),
                        ("b", "NHS number is the same as on Patient/a (data.ndjson:1)")]


_PARTS = ["a", "/", '"', "\\", "é", " ", "\n", "#", "reference", '":"']
_TEXTS = st.lists(st.sampled_from(_PARTS), max_size=6).map("".join)
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), _TEXTS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(["reference", "display", "a"]), _TEXTS), inner, max_size=3)),
    max_leaves=10)


@settings(max_examples=400, deadline=None)
@given(_JSON, st.booleans())
def test_references_found_by_splitting_are_those_the_pattern_finds(value: Any, spaced: bool) -> None:
    """The fast split of compact JSON and the regular expression agree on any JSON text, spaced or not."""
    raw = (json.dumps(value, ensure_ascii=False) if spaced else orjson.dumps(value).decode()).encode()
    item = Located({"resourceType": "Basic"}, Location("f", 1), None, raw)
    assert references_in(item) == references_by_pattern(raw)
    refs = [v["reference"] for v in _dicts(value) if isinstance(v.get("reference"), str)]
    assert sorted(references_in(item)) == sorted(refs)


def _dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in _dicts(v))]
    if isinstance(value, list):
        return [d for v in value for d in _dicts(v)]
    return []
