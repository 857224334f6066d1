"""Redaction by value: what the structured pass replaces is also replaced wherever else it occurs."""

from __future__ import annotations

import orjson

from harness.evidence import EvidenceStore, Redactor

PATIENT = {
    "resourceType": "Patient", "id": "p1",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
                   {"system": "https://example.org/Id/local-resident", "value": "RES-00042"}],
    "name": [{"family": "Okonkwo-Hale", "given": ["Adaeze", "Jo"]}],
    "birthDate": "1941-07-23", "deceasedDateTime": "2026-10-02",
    "address": [{"line": ["14 Larch Close"], "postalCode": "LS6 2QT"}],
    "telecom": [{"system": "phone", "value": "0113 496 0123"}],
}
ANSWERS = {
    "resourceType": "QuestionnaireResponse", "status": "completed",
    "item": [{"linkId": "about-me", "text": "What matters to you?",
              "answer": [{"valueString": "My granddaughter Priya visits on Sundays"}]}],
    "note": [{"text": "Adaeze prefers tea at 4pm"}],
}


def _record(store: EvidenceStore, body: dict[str, object] | str, status: int = 200,
            headers: dict[str, str] | None = None) -> str:
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    ex = store.record(rule=None, method="GET", url="http://x/Patient/p1", request_headers={}, request_body=None,
                      status=status, response_headers=headers or {}, response_body=raw, elapsed_ms=1.0, error=None)
    return orjson.dumps(vars(ex)).decode()


def test_values_the_structured_pass_learned_are_replaced_in_free_text_headers_and_errors() -> None:
    store = EvidenceStore(Redactor())
    first = _record(store, PATIENT)
    assert "Okonkwo-Hale" not in first and "RES-00042" not in first and "2026-10-02" not in first
    leak = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception", "diagnostics":
            "failed for OKONKWO-HALE, Adaeze (born 23/07/1941) at 14 larch close, LS6 2QT; ref RES-00042"}]}
    stored = _record(store, leak, 500, {"X-Debug": "subject=Okonkwo-Hale"})
    for value in ("OKONKWO", "Adaeze", "23/07/1941", "larch close", "LS6 2QT", "RES-00042", "Okonkwo-Hale"):
        assert value.lower() not in stored.lower(), value
    assert "«name-1»" in stored and "«dob-1»" in stored  # the same placeholders as the structured pass gave
    # a two-letter given name is not hunted through ordinary text
    assert "Jo" in _record(store, "Job failed: try again")


def test_free_text_answers_and_notes_are_redacted_by_default() -> None:
    stored = _record(EvidenceStore(Redactor()), ANSWERS)
    assert "Priya" not in stored and "tea at 4pm" not in stored
    assert "What matters to you?" in stored  # the question is not about anyone


def test_values_learned_later_are_replaced_when_the_evidence_is_written(tmp_path: object) -> None:
    store = EvidenceStore(Redactor())
    _record(store, "upstream said: no such resident Okonkwo-Hale", 502)  # before the harness knew the name
    _record(store, PATIENT)
    store.write(tmp_path)  # type: ignore[arg-type]
    written = (tmp_path / "EX-00001.json").read_text(encoding="utf-8")  # type: ignore[operator]
    assert "Okonkwo-Hale" not in written and "«name-1»" in written


def test_full_evidence_keeps_values_but_still_knows_them() -> None:
    redactor = Redactor(full=True)
    stored = _record(EvidenceStore(redactor), PATIENT)
    assert "Okonkwo-Hale" in stored
    assert redactor.patient_values_in("error for okonkwo-hale born 1941-07-23") == ["dob", "name"]
