"""UK Core profiles compiled from the package (--package-dir) onto the R4 base validator."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from harness.fhir.package import read_resource
from harness.results import Outcome
from harness.runner import assess
from harness.targets.export import ExportTarget
from tests.conftest import DATA
from tests.helpers import AS_OF

UKCORE = DATA / "ukcore-stu2"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ETHNIC = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
PATIENT = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"


def _example(name: str) -> dict[str, Any]:
    resource = read_resource(UKCORE / "examples" / f"{name}.xml", frozenset({"Patient"}))
    assert resource is not None
    return resource


def _run(tmp_path: Path, resources: list[dict[str, Any]], suite: str = "uk-core-profiles",
         package: Path | None = UKCORE) -> Any:
    export = tmp_path / "export.ndjson"
    export.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    return assess(suite, ExportTarget([export]), as_of=AS_OF, package_dir=package)


def test_uk_core_examples_conform_to_their_profiles() -> None:
    a = assess("uk-core-profiles", ExportTarget([UKCORE / "examples"]), as_of=AS_OF, package_dir=UKCORE)
    conformance = [r for r in a.result.rules if r.rule.startswith("UKCORE-CONF-")]
    assert len(conformance) == 14
    assert {r.rule: r.outcome for r in conformance if r.outcome != Outcome.PASS} == {}
    assert a.result.rule("UKCORE-CONF-PATIENT").subjects >= 20
    # what needs a terminology server is said, never passed silently
    assert "binding:http://hl7.org/fhir/ValueSet/all-languages" in a.report["coverage"]["not_evaluated"][
        "UKCORE-CONF-PATIENT"]


def test_profile_defects_are_found_by_slice_extension_and_binding(tmp_path: Path) -> None:
    good = _example("UKCore-Patient-RichardSmith-Example")
    two_numbers = copy.deepcopy(good)
    two_numbers["id"] = "two-numbers"
    two_numbers["identifier"] = [{"system": NHS}, {"system": NHS, "value": "9000000009"}]
    wrong_type = copy.deepcopy(good)
    wrong_type["id"] = "wrong-type"
    wrong_type["extension"] = [e for e in good.get("extension", []) if e["url"] != ETHNIC] + [
        {"url": ETHNIC, "valueString": "White British"}]
    a = _run(tmp_path, [good, two_numbers, wrong_type])
    rule = a.result.rule("UKCORE-CONF-PATIENT")
    assert rule.outcome == Outcome.FAIL
    found = sorted((f.resource_id or "", f.message) for f in rule.findings)
    assert found == [
        ("two-numbers", "Patient.identifier:nhsNumber.value: minimum required = 1, but only found 0 "
                        "(profile UKCorePatient)"),
        ("two-numbers", "Patient.identifier:nhsNumber: max allowed = 1, but found 2 (profile UKCorePatient)"),
        ("wrong-type", "Patient.extension:ethnicCategory.valueString: the profile allows value[x] only as "
                       "CodeableConcept (profile ExtensionUKCoreEthnicCategory)"),
    ]


def test_declared_profiles_are_checked_and_unknown_ones_are_not_evaluated(tmp_path: Path) -> None:
    bad = _example("UKCore-Patient-RichardSmith-Example")
    bad["meta"] = {"profile": [PATIENT]}
    bad["identifier"] = [{"system": NHS}]
    with_package = _run(tmp_path, [bad], suite="fhir-r4-base")
    assert with_package.result.rule("FHIR-PROF-001").outcome == Outcome.FAIL
    without = _run(tmp_path, [bad], suite="fhir-r4-base", package=None)
    rule = without.result.rule("FHIR-PROF-001")
    assert rule.outcome == Outcome.PASS and rule.findings == []
    assert without.report["coverage"]["not_evaluated"]["FHIR-PROF-001"] == {
        f"profile:{PATIENT}": "no package directory given (--package-dir)"}


def test_a_named_profile_without_its_package_is_an_error_never_a_pass(tmp_path: Path) -> None:
    a = _run(tmp_path, [_example("UKCore-Patient-RichardSmith-Example")], package=None)
    rule = a.result.rule("UKCORE-CONF-PATIENT")
    assert rule.outcome == Outcome.ERROR
    assert "needs its package: give --package-dir" in (rule.message or "")
    assert a.decision.outcome == "fail"
