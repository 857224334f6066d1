"""Hypothesis strategies for the resources a social care record holds, and whole datasets.

Valid instances follow the installed packs: code lists come from the packs' binding rules
(so a new pack version changes what is generated), identifiers pass their checks, and every
reference resolves. Edge cases are deliberate: names in any script with combining marks,
apostrophes and hyphens, one letter or very long; birth dates on leap days, century
boundaries and as partial dates; date-times in several time zones; NHS numbers across the
issued ranges; optional elements present and absent.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from hypothesis import strategies as st

from harness.identifiers import NHS_NUMBER_SYSTEM, ODS_ORGANIZATION_SYSTEM, nhs_check_digit
from harness.properties.codes import (
    ABOUT_ME_QUESTIONNAIRE,
    ABOUT_ME_SUPPORTED_BY,
    ALLERGIES,
    ALLERGY_CLINICAL_CS,
    BCP47,
    CARE_PLAN,
    DECLINED,
    DMD,
    ETHNIC_CATEGORIES,
    ETHNIC_CS,
    ETHNIC_EXT,
    LANGUAGES,
    MEDICINES,
    NEED_CS,
    NEEDS,
    NO_KNOWN_ALLERGY,
    OBSERVATIONS,
    ORG_TYPE_CS,
    RELATIONSHIP_CS,
    SCT,
    VERIFICATION_EXT,
    narrative,
)

Resource = dict[str, Any]
_LETTERS = st.characters(categories=["Lu", "Ll", "Lo"], exclude_characters="\u2028\u2029")
_MARKS = st.characters(categories=["Mn"])


@cache
def binding_codes(rule_id: str) -> tuple[str | None, tuple[str, ...]]:
    """(system, codes) of a binding rule in the installed packs: generation follows the packs."""
    from harness.suites import Catalogue  # noqa: PLC0415 - loading packs is deferred until asked

    for pack in Catalogue.default().packs().values():
        for rule in pack.rules:
            if rule.id == rule_id and rule.kind == "binding":
                codes = tuple(c if isinstance(c, str) else c["code"] for c in rule.check.get("codes", []))
                return rule.check.get("system"), codes
    raise ValueError(f"no binding rule {rule_id} with a code list in the installed packs")


@cache
def value_set_codes(url: str) -> tuple[str, ...]:
    """The codes of an R4 value set a base element binds (from the generated R4 tables)."""
    from harness.fhir.validator import binding  # noqa: PLC0415 - the tables load when first asked

    codes = binding("required", url).codes
    if not codes:
        raise ValueError(f"value set {url} is not in the R4 tables")
    return tuple(sorted(c for system in codes.values() for c in system))


GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"


@st.composite
def name_parts(draw: st.DrawFn) -> str:
    """A name word in any script: letters with combining marks, joined by apostrophes or hyphens."""
    words: list[str] = draw(st.lists(
        st.builds(lambda head, rest: head + rest, _LETTERS,
                  st.text(st.one_of(_LETTERS, _MARKS), max_size=draw(st.sampled_from([0, 3, 12, 60])))),
        min_size=1, max_size=3))
    joiners = draw(st.lists(st.sampled_from(["-", "'", "’", " "]), min_size=len(words) - 1,
                            max_size=len(words) - 1))
    text: str = words[0]
    for joiner, word in zip(joiners, words[1:], strict=True):
        text += joiner + word
    return text


def human_names() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"family": name_parts()},
        optional={"given": st.lists(name_parts(), min_size=1, max_size=3),
                  "use": st.sampled_from(["official", "usual", "nickname"]),
                  "prefix": st.lists(st.sampled_from(["Mr", "Mrs", "Ms", "Mx", "Dr"]), min_size=1, max_size=1)})


@st.composite
def birth_dates(draw: st.DrawFn) -> str:
    """Full dates (leap days and century boundaries favoured) or partial dates (YYYY, YYYY-MM)."""
    special = [dt.date(1900, 1, 1), dt.date(1900, 2, 28), dt.date(1999, 12, 31), dt.date(2000, 1, 1),
               dt.date(2000, 2, 29), dt.date(1904, 2, 29), dt.date(1996, 2, 29)]
    day = draw(st.one_of(st.sampled_from(special), st.dates(dt.date(1900, 1, 1), dt.date(2020, 12, 31))))
    precision = draw(st.sampled_from(["day", "day", "day", "month", "year"]))
    text = day.isoformat()
    return text[:7] if precision == "month" else text[:4] if precision == "year" else text


@st.composite
def date_times(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2026, 12, 31)))
    offset = draw(st.sampled_from(["Z", "+00:00", "+01:00", "-05:00", "+05:30", "+13:45"]))
    return moment.replace(microsecond=0).isoformat() + offset


@st.composite
def nhs_numbers(draw: st.DrawFn, test_range: bool = False) -> str:
    """Modulus-11-valid ten-digit numbers, across the issued ranges (or only the 999 test range)."""
    prefix = "999" if test_range else draw(st.sampled_from(["4", "6", "7", "32", "999", "01", "94"]))
    body = prefix + draw(st.text("0123456789", min_size=8 - len(prefix), max_size=8 - len(prefix)))
    # the ninth digit is chosen, not drawn, so every draw gives a valid number (no retry loop)
    for ninth in "0123456789":
        check = nhs_check_digit(body + ninth)
        number = f"{body}{ninth}{check}"
        if check is not None and len(set(number)) > 1:
            return number
    raise AssertionError("unreachable: some ninth digit always gives a check digit")


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _ref(resource: Resource) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


@st.composite
def patients(draw: st.DrawFn, rid: str, number: str) -> Resource:
    system, codes = binding_codes("NHSNO-VER-002")
    genders = value_set_codes(GENDER_VS)
    identifier: dict[str, Any] = {"system": NHS_NUMBER_SYSTEM, "value": number, "extension": [
        {"url": VERIFICATION_EXT, "valueCodeableConcept": _coding(system or "", draw(st.sampled_from(codes)),
                                                                  "verification status")}]}
    patient: Resource = {"resourceType": "Patient", "id": rid, "identifier": [identifier],
                         "name": draw(st.lists(human_names(), min_size=1, max_size=2)),
                         "gender": draw(st.sampled_from(genders)), "birthDate": draw(birth_dates()),
                         "extension": [{"url": ETHNIC_EXT, "valueCodeableConcept": _coding(
                             ETHNIC_CS, *draw(st.sampled_from(ETHNIC_CATEGORIES)))}]}
    if draw(st.booleans()):
        patient["active"] = True
    if draw(st.booleans()):
        patient["communication"] = [{"language": _coding(BCP47, *draw(st.sampled_from(LANGUAGES)))}]
    if draw(st.booleans()):
        patient["telecom"] = [{"system": "phone", "value": draw(st.from_regex(r"0[1-9][0-9]{9}", fullmatch=True))}]
    return patient


def organization() -> Resource:
    return {"resourceType": "Organization", "id": "org", "active": True, "name": "Care home provider",
            "type": [_coding(ORG_TYPE_CS, "prov", "Healthcare Provider")],
            "identifier": [{"system": ODS_ORGANIZATION_SYSTEM, "value": "VM1A2"}]}


@st.composite
def datasets(draw: st.DrawFn, min_residents: int = 1, max_residents: int = 4,
             test_range: bool = True) -> list[Resource]:
    """A coherent care-home dataset that meets every export rule of asl-dscr-core.

    Its NHS numbers are in the 999 test range (never a real person's), unless ``test_range`` is
    false: the engine's own property tests draw across the issued ranges too.
    """
    org = organization()
    worker: Resource = {"resourceType": "Practitioner", "id": "worker", "name": [draw(human_names())]}
    resources = [org, worker]
    numbers = draw(st.lists(nhs_numbers(test_range=test_range), min_size=min_residents, max_size=max_residents,
                            unique=True))
    genders = value_set_codes(GENDER_VS)
    for i, number in enumerate(numbers):
        patient = draw(patients(f"p{i}", number))
        pref = _ref(patient)
        resources.append(patient)
        carer: Resource = {"resourceType": "RelatedPerson", "id": f"c{i}", "patient": pref,
                           "relationship": [_coding(RELATIONSHIP_CS, "Carer", "Carer")]}
        if draw(st.booleans()):
            carer["gender"] = draw(st.sampled_from(genders))
        resources.append(carer)
        resources.append({"resourceType": "CarePlan", "id": f"cp{i}", "status": "active", "intent": "plan",
                          "subject": pref, "author": _ref(worker), "category": [_coding(SCT, *CARE_PLAN)]})
        resources.append({"resourceType": "Provenance", "id": f"pv{i}", "recorded": draw(date_times()),
                          "target": [pref, {"reference": f"CarePlan/cp{i}"}], "agent": [{"who": _ref(worker)}]})
        code, display = draw(st.sampled_from([*ALLERGIES, NO_KNOWN_ALLERGY]))
        resources.append({"resourceType": "AllergyIntolerance", "id": f"a{i}", "patient": pref,
                          "code": _coding(SCT, code, display), "recordedDate": draw(date_times()),
                          # ait-1: a clinical status unless the record was entered in error
                          "clinicalStatus": _coding(ALLERGY_CLINICAL_CS, "active", "Active")})
        medicine = draw(st.sampled_from(MEDICINES))
        resources.append({"resourceType": "MedicationStatement", "id": f"ms{i}", "status": "active",
                          "medicationCodeableConcept": _coding(DMD, *medicine), "subject": pref})
        for k in range(draw(st.integers(0, 2))):
            admin: Resource = {"resourceType": "MedicationAdministration", "id": f"ma{i}-{k}",
                               "status": draw(st.sampled_from(["completed", "not-done"])),
                               "medicationCodeableConcept": _coding(DMD, *medicine), "subject": pref,
                               "effectiveDateTime": draw(date_times())}
            if admin["status"] == "not-done":
                admin["statusReason"] = [_coding(SCT, *DECLINED)]
            resources.append(admin)
        for k in range(draw(st.integers(0, 2))):
            code, display, unit, low, high = draw(st.sampled_from(OBSERVATIONS))
            resources.append({"resourceType": "Observation", "id": f"o{i}-{k}", "status": "final",
                              "code": _coding(SCT, code, display), "subject": pref,
                              "basedOn": [{"reference": f"CarePlan/cp{i}"}],
                              "effectiveDateTime": draw(date_times()),
                              "valueQuantity": {"value": draw(st.integers(low, high)), "unit": unit,
                                                "system": "http://unitsofmeasure.org", "code": unit}})
        if draw(st.booleans()):  # an Accessible Information need, flagged and coded
            resources.append({"resourceType": "Flag", "id": f"f{i}", "status": "active", "subject": pref,
                              "code": _coding(NEED_CS, *draw(st.sampled_from(NEEDS)))})
        if draw(st.booleans()):  # About Me, as a QuestionnaireResponse, written alone or with the carer's help
            helper = _ref(carer) if draw(st.booleans()) else None
            resources.append(about_me(f"am{i}", pref, draw(st.lists(name_parts(), min_size=1, max_size=7)), helper))
    for resource in resources:
        resource.setdefault("meta", {"versionId": "1"})
        resource.setdefault("text", narrative(resource["resourceType"]))
    return resources


def about_me(rid: str, subject: dict[str, str], answers: list[str],
             helper: dict[str, str] | None = None) -> Resource:
    """A PRSB About Me record as a QuestionnaireResponse: one item per heading answered (PRSB link ids)."""
    headings = binding_codes("ABOUTME-001")[1][:7]  # the seven headings, in the pack's order
    items = [{"linkId": heading, "answer": [{"valueString": text}]}
             for heading, text in zip(headings, answers, strict=False)]
    if helper is not None:
        items.append({"linkId": ABOUT_ME_SUPPORTED_BY, "answer": [{"valueString": "Their carer"}]})
    return {"resourceType": "QuestionnaireResponse", "id": rid, "questionnaire": ABOUT_ME_QUESTIONNAIRE,
            "status": "completed", "subject": subject, "authored": "2026-10-01", "author": helper or subject,
            "item": items}
