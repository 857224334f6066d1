"""Violating instances: a valid dataset changed so that exactly one rule fails.

``violating_datasets(rule_id)`` draws a valid dataset and breaks it for that rule alone,
returning the dataset and the resources the findings must name. A rule with no known way
to break it raises, rather than silently generating valid data.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from harness.identifiers import NHS_NUMBER_SYSTEM, ODS_ORGANIZATION_SYSTEM, ODS_SITE_SYSTEM
from harness.properties.codes import ABOUT_ME_QUESTIONNAIRE, narrative
from harness.properties.strategies import datasets

Resource = dict[str, Any]
Subjects = set[tuple[str, str]]


def _find(data: list[Resource], rtype: str, rid: str | None = None) -> Resource:
    return next(r for r in data if r["resourceType"] == rtype and (rid is None or r["id"] == rid))


def _nhs(patient: Resource) -> dict[str, Any]:
    return next(i for i in patient["identifier"] if i["system"] == NHS_NUMBER_SYSTEM)


def _spaced(data: list[Resource]) -> Subjects:
    ident = _nhs(_find(data, "Patient", "p0"))
    v = ident["value"]
    ident["value"] = f"{v[:3]} {v[3:6]} {v[6:]}"
    return {("Patient", "p0")}


def _bad_check_digit(data: list[Resource]) -> Subjects:
    used = {_nhs(p)["value"] for p in data if p["resourceType"] == "Patient"}
    ident = _nhs(_find(data, "Patient", "p0"))
    v = ident["value"]
    for step in range(1, 10):
        candidate = v[:9] + str((int(v[9]) + step) % 10)
        if candidate not in used:
            ident["value"] = candidate
            return {("Patient", "p0")}
    raise ValueError("no free number")  # pragma: no cover - ten digits always leave one


def _set(rtype: str, rid: str, **fields: Any) -> Callable[[list[Resource]], Subjects]:
    def apply(data: list[Resource]) -> Subjects:
        _find(data, rtype, rid).update(copy.deepcopy(fields))
        return {(rtype, rid)}
    return apply


def _drop(rtype: str, rid: str, field: str) -> Callable[[list[Resource]], Subjects]:
    def apply(data: list[Resource]) -> Subjects:
        del _find(data, rtype, rid)[field]
        return {(rtype, rid)}
    return apply


def _bump(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def _duplicate(data: list[Resource]) -> Subjects:
    _nhs(_find(data, "Patient", "p1"))["value"] = _nhs(_find(data, "Patient", "p0"))["value"]
    return {("Patient", "p0"), ("Patient", "p1")}


def _no_verification(data: list[Resource]) -> Subjects:
    del _nhs(_find(data, "Patient", "p0"))["extension"]
    return {("Patient", "p0")}


def _bad_verification(data: list[Resource]) -> Subjects:
    _nhs(_find(data, "Patient", "p0"))["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = "09"
    return {("Patient", "p0")}


def _ods(mutate: Callable[[Resource], None]) -> Callable[[list[Resource]], Subjects]:
    def apply(data: list[Resource]) -> Subjects:
        mutate(_find(data, "Organization", "org"))
        return {("Organization", "org")}
    return apply


def _lower_ods(org: Resource) -> None:
    org["identifier"][0]["value"] = org["identifier"][0]["value"].lower()


def _misspelt_ods(org: Resource) -> None:
    org["identifier"].append({"system": "https://fhir.nhs.uk/Id/ods-organisation-code", "value": "VM1A2"})


def _no_ods(org: Resource) -> None:
    org["identifier"] = [i for i in org["identifier"] if i["system"] != ODS_ORGANIZATION_SYSTEM] or \
        [{"system": "https://care-assure.example/Id/local", "value": "1"}]


def _site(data: list[Resource]) -> Subjects:
    data.append({"resourceType": "Location", "id": "site", "name": "Care home",
                 "identifier": [{"system": ODS_SITE_SYSTEM, "value": "vm1a2"}],
                 "managingOrganization": {"reference": "Organization/org"}, "meta": {"versionId": "1"}})
    return {("Location", "site")}


def _code(rtype: str, rid: str, element: str) -> Callable[[list[Resource]], Subjects]:
    def apply(data: list[Resource]) -> Subjects:
        coding = _find(data, rtype, rid)[element]["coding"][0]
        coding["code"] = _bump(coding["code"])
        return {(rtype, rid)}
    return apply


def _dmd_slash(data: list[Resource]) -> Subjects:
    _find(data, "MedicationStatement", "ms0")["medicationCodeableConcept"]["coding"][0]["system"] += "/"
    return {("MedicationStatement", "ms0")}


def _no_care_plan(data: list[Resource]) -> Subjects:
    """No care plan, and so no notes recorded against one."""
    data.remove(_find(data, "CarePlan", "cp0"))
    data[:] = [r for r in data if not (r["resourceType"] == "Observation" and r["id"].startswith("o0-"))]
    audit = _find(data, "Provenance", "pv0")
    audit["target"] = [t for t in audit["target"] if t["reference"] != "CarePlan/cp0"]
    return {("Patient", "p0")}


def _orphan_observation(data: list[Resource]) -> Subjects:
    data.append({"resourceType": "Observation", "id": "orphan", "status": "final", "meta": {"versionId": "1"},
                 "code": {"coding": [{"system": "http://snomed.info/sct", "code": "364075005"}]},
                 "basedOn": [{"reference": "CarePlan/cp0"}]})
    return {("Observation", "orphan")}


def _not_done(data: list[Resource]) -> Subjects:
    data.append({"resourceType": "MedicationAdministration", "id": "refused", "status": "not-done",
                 "medicationCodeableConcept": copy.deepcopy(_find(data, "MedicationStatement", "ms0")[
                     "medicationCodeableConcept"]), "subject": {"reference": "Patient/p0"},
                 "effectiveDateTime": "2026-10-01T08:00:00Z", "meta": {"versionId": "1"}})
    return {("MedicationAdministration", "refused")}


def _add(resource: Resource) -> Callable[[list[Resource]], Subjects]:
    """Add a resource (a first version, about p0) that breaks the rule by itself."""
    def apply(data: list[Resource]) -> Subjects:
        data.append({"meta": {"versionId": "1"}, **copy.deepcopy(resource)})
        return {(resource["resourceType"], resource["id"])}
    return apply


def _drop_all(rtype: str) -> Callable[[list[Resource]], Subjects]:
    def apply(data: list[Resource]) -> Subjects:
        data[:] = [r for r in data if r["resourceType"] != rtype]
        return {("Patient", r["id"]) for r in data if r["resourceType"] == "Patient"}
    return apply


def _no_allergy_status(data: list[Resource]) -> Subjects:
    data.remove(_find(data, "AllergyIntolerance", "a0"))
    return {("Patient", "p0")}


def _duplicate_worker(data: list[Resource]) -> Subjects:
    data.append(copy.deepcopy(_find(data, "Practitioner", "worker")))
    return {("Practitioner", "worker")}


def _org_without_ods(data: list[Resource]) -> Subjects:
    data.append({"resourceType": "Organization", "id": "group", "active": True, "name": "Care group",
                 "meta": {"versionId": "1"}, "text": narrative("Organization")})
    _find(data, "Patient", "p0")["managingOrganization"] = {"reference": "Organization/group"}
    return {("Organization", "group")}


def _ethnic(code: str) -> Callable[[list[Resource]], Subjects]:
    def apply(data: list[Resource]) -> Subjects:
        patient = _find(data, "Patient", "p0")
        patient["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = code
        return {("Patient", "p0")}
    return apply


P0 = {"reference": "Patient/p0"}
ABOUT_ME = {"resourceType": "QuestionnaireResponse", "questionnaire": ABOUT_ME_QUESTIONNAIRE, "status": "completed",
            "subject": P0}


def _repeated(data: list[Resource]) -> Subjects:
    _nhs(_find(data, "Patient", "p0"))["value"] = "4444444444"
    return {("Patient", "p0")}


# Rules a violation cannot help breaking as well: a malformed BCP-47 tag is, of necessity, outside
# the preferred CommonLanguages value set too; and UK Core's own profile rules (generated from its
# definitions) repeat some identifier and language requirements.
UKC_LANGUAGE = "UKC-PATIENT-COMMUNICATION-LANGUAGE-BIND"
ALSO_FAILS: dict[str, frozenset[str]] = {
    "MODS-LANG-001": frozenset({UKC_LANGUAGE}),
    "MODS-LANG-002": frozenset({"FHIR-BIND-002", UKC_LANGUAGE}),
    "NHSNO-VER-002": frozenset({"UKC-PATIENT-NHSNUMBER-NHSNUMBERVERIFICATIONSTATUS-VALUEX-BIND"}),
    "ODS-SYS-001": frozenset({"UKC-ORGANIZATION-ODSORGANISATIONCODE-SYS"}),
}

VIOLATIONS: dict[str, Callable[[list[Resource]], Subjects]] = {
    "NHSNO-FMT-001": _spaced,
    "NHSNO-CHK-001": _bad_check_digit,
    "NHSNO-CHK-002": _repeated,
    "NHSNO-UNQ-001": _duplicate,
    "NHSNO-VER-001": _no_verification,
    "NHSNO-VER-002": _bad_verification,
    "ODS-FMT-001": _ods(_lower_ods),
    "ODS-FMT-002": _site,
    "ODS-SYS-001": _ods(_misspelt_ods),
    "ODS-REF-001": _ods(_no_ods),
    "ODS-REF-002": _org_without_ods,
    "SCT-FMT-001": _code("AllergyIntolerance", "a0", "code"),
    "DMD-CHK-001": _code("MedicationStatement", "ms0", "medicationCodeableConcept"),
    "DMD-SYS-001": _dmd_slash,
    "FHIR-STRUCT-001": _set("Patient", "p0", nickname="Nan"),
    "FHIR-REF-001": _set("CarePlan", "cp0", author={"reference": "Practitioner/missing"}),
    "FHIR-CARD-001": _set("Provenance", "pv0", occurredDateTime="2024-01-01T10:00:00Z",
                          occurredPeriod={"start": "2024-01-01T10:00:00Z"}),
    "FHIR-BIND-001": _set("Patient", "p0", gender="M"),
    "FHIR-BIND-002": _set("Patient", "p0", communication=[{"language": {"coding": [
        {"system": "urn:ietf:bcp:47", "code": "cy", "display": "Welsh"}]}}]),
    "FHIR-INV-001": _set("Patient", "p0", contact=[{"gender": "female"}]),
    "FHIR-INV-002": _drop("Patient", "p0", "text"),
    "FHIR-REF-002": _set("Organization", "org", partOf={"reference": "Patient/p0"}),
    "FHIR-REF-004": _duplicate_worker,
    "DSCR-CP-001": _no_care_plan,
    "DSCR-NOTE-001": _orphan_observation,
    "DSCR-MAR-001": _not_done,
    "ALG-CODE-001": _set("AllergyIntolerance", "a0", code={"text": "penicillin"}),
    "DSCR-CARER-001": _drop("RelatedPerson", "c0", "relationship"),
    "NHSNO-ABS-001": _drop("Patient", "p0", "identifier"),
    "DSCR-NOTE-002": _add({"resourceType": "Observation", "id": "unplanned", "status": "final", "subject": P0,
                           "code": {"text": "Settled well at night"}}),
    "DSCR-AUDIT-001": _drop_all("Provenance"),
    "DSCR-TASK-001": _add({"resourceType": "Task", "id": "unplanned-task", "status": "requested",
                           "intent": "plan", "for": P0, "description": "Help with lunch"}),
    "MED-CODE-001": _set("MedicationStatement", "ms0", medicationCodeableConcept={"text": "Amoxicillin"}),
    "ALG-CODE-002": _set("AllergyIntolerance", "a0", code={"coding": [
        {"system": "https://care-assure.example/CodeSystem/local-allergen", "code": "PEN"}]}),
    "ALG-NKA-001": _no_allergy_status,
    "AIS-CODE-001": _add({"resourceType": "Flag", "id": "uncoded-need", "status": "active", "subject": P0,
                          "code": {"text": "Needs large print"}}),
    "MODS-PD-001": _drop("Patient", "p0", "birthDate"),
    "MODS-PD-002": _drop("Patient", "p0", "extension"),
    "MODS-PD-003": _drop("Patient", "p0", "gender"),
    "MODS-PD-004": _ethnic("O"),
    "MODS-REC-001": _set("Patient", "p0", meta={"lastUpdated": "2026-10-01T09:00:00Z"}),
    "MODS-COM-001": _add({"resourceType": "Communication", "id": "unaddressed", "status": "completed",
                          "subject": P0, "sender": {"reference": "Practitioner/worker"}}),
    "MODS-SVC-001": _add({"resourceType": "EpisodeOfCare", "id": "undescribed", "status": "active", "patient": P0}),
    "MODS-LANG-001": _set("Patient", "p0", communication=[{"language": {"text": "English"}}]),
    "MODS-LANG-002": _set("Patient", "p0", communication=[{"language": {"coding": [
        {"system": "urn:ietf:bcp:47", "code": "en_GB"}]}}]),
    "ABOUTME-001": _add({**ABOUT_ME, "id": "odd-heading", "authored": "2026-10-01",
                         "item": [{"linkId": "favourite-colour", "answer": [{"valueString": "green"}]}]}),
    "ABOUTME-002": _add({**ABOUT_ME, "id": "undated"}),
    "ABOUTME-003": _add({**ABOUT_ME, "id": "helped", "authored": "2026-10-01",
                         "author": {"reference": "RelatedPerson/c0"}}),
}


def violating_datasets(rule_id: str) -> st.SearchStrategy[tuple[list[Resource], Subjects]]:
    """A valid dataset broken so that ``rule_id`` alone fails, with the resources it must name."""
    mutate = VIOLATIONS.get(rule_id)
    if mutate is None:
        raise ValueError(f"no known way to violate {rule_id}; add one to harness/properties/violations.py")
    residents = 2 if rule_id in ("NHSNO-UNQ-001", "NHSNO-ABS-001") else 1

    def broken(data: list[Resource]) -> tuple[list[Resource], Subjects]:
        data = copy.deepcopy(data)
        before = {id(r) for r in data}
        subjects = mutate(data)
        for resource in data:  # resources a violation adds carry a narrative too (dom-6)
            if id(resource) not in before:
                resource.setdefault("text", narrative(resource["resourceType"]))
        return data, subjects

    return datasets(min_residents=residents).map(broken)
