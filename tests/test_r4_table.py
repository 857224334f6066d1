"""The committed R4 structure table is exactly what the generator derives from the definitions."""

from __future__ import annotations

import json

from harness.fhir.generate import OUTPUT, VALUESETS_OUTPUT, build, build_valuesets
from harness.fhir.model import r4
from tests.conftest import DATA


def test_committed_table_matches_regeneration() -> None:
    regenerated = build(DATA / "fhir-r4" / "definitions")
    committed = json.loads(OUTPUT.read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(regenerated)), "run `make tables` and commit the result"
    valuesets = build_valuesets(regenerated, DATA / "fhir-r4" / "expansions")
    assert json.loads(VALUESETS_OUTPUT.read_text(encoding="utf-8")) == json.loads(json.dumps(valuesets)), \
        "run `make tables` and commit the result"


def test_model_knows_resources_and_choices() -> None:
    model = r4()
    assert len(model.resource_types) == 146
    assert {"Patient", "CarePlan", "MedicationAdministration", "Bundle"} <= model.resource_types
    patient = model.children(("Patient", ""))
    assert patient["identifier"].many and not patient["gender"].many
    assert patient["deceasedBoolean"].choice == "deceased"
    assert model.children(("Questionnaire", "item"))["item"].state == ("Questionnaire", "item")
    assert model.children(("Dosage", ""))["doseAndRate"].many
