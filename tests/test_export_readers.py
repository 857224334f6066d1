"""Export readers: every format, broken input reported with its location, nothing lost."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson

from harness.fhir.xml import resource_to_json
from harness.targets.base import Located, ReadError
from harness.targets.export import ExportTarget
from tests.conftest import DATA


def read(*paths: Path) -> tuple[list[Located], list[ReadError]]:
    items = list(ExportTarget(list(paths)).items())
    return ([i for i in items if isinstance(i, Located)], [i for i in items if isinstance(i, ReadError)])


def test_ndjson_lines_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(b'{"resourceType":"Patient","id":"a"}\n\n{"resourceType":"Patient",\n[1,2]\n'
                  b'{"id":"x"}\n{"resourceType":"Patient","id":"b"}')
    ok, errors = read(f)
    assert [(r.resource["id"], r.location.line) for r in ok] == [("a", 1), ("b", 6)]
    assert [(e.location.line, e.message.split(":")[0]) for e in errors] == [
        (3, "line is not valid JSON"),
        (4, "expected a JSON object (a FHIR resource), found an array"),
        (5, "object has no 'resourceType', so it is not a FHIR resource"),
    ]
    assert str(errors[0].location) == "Patient.ndjson:3"


def test_bundle_json_streams_entries_with_full_urls(tmp_path: Path) -> None:
    f = tmp_path / "bundle.json"
    # resourceType last: the reader must not depend on key order
    f.write_bytes(orjson.dumps({"type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p", "birthDate": "1950-01-01"}},
        {"fullUrl": "urn:uuid:2"},
        {"resource": {"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 1.5}}},
    ], "resourceType": "Bundle"}, option=orjson.OPT_INDENT_2))
    ok, errors = read(f)
    assert [(r.resource["id"], r.full_url, r.location.pointer) for r in ok] == [
        ("p", "urn:uuid:1", "/entry/0/resource"), ("o", None, "/entry/2/resource")]
    assert ok[1].resource["valueQuantity"]["value"] == 1.5
    assert [(e.location.pointer, e.message) for e in errors] == [("/entry/1", "Bundle entry has no resource")]


def test_single_resource_and_truncated_json(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_bytes(b'{"resourceType": "Patient", "id": "solo"}')
    (tmp_path / "cut.json").write_bytes(b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Pat')
    (tmp_path / "empty.json").write_bytes(b'{"resourceType": "Bundle", "type": "collection"}')
    ok, errors = read(tmp_path)
    assert [r.resource["id"] for r in ok] == ["solo"]
    assert len(errors) == 1 and errors[0].location.file.endswith("cut.json")
    assert "not valid JSON" in errors[0].message


def test_xml_bundle_streams_entries_with_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "bundle.xml"
    f.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <type value="collection"/>
  <entry>
    <fullUrl value="urn:uuid:a"/>
    <resource>
      <Patient>
        <id value="a"/>
        <active value="true"/>
        <name><given value="Ann"/><given value="Marie"/></name>
        <birthDate value="1950-02-28"/>
      </Patient>
    </resource>
  </entry>
  <entry>
    <resource>
      <Patient><id value="b"/><nickname value="x"/></Patient>
    </resource>
  </entry>
</Bundle>
""", encoding="utf-8")
    ok, errors = read(f)
    assert [(r.resource, r.location.line, r.full_url) for r in ok] == [(
        {"resourceType": "Patient", "id": "a", "active": True, "name": [{"given": ["Ann", "Marie"]}],
         "birthDate": "1950-02-28"}, 7, "urn:uuid:a")]
    assert [(e.location.line, e.message) for e in errors] == [(17, "element 'nickname' is not allowed in Patient")]


def test_broken_xml_reports_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.xml"
    f.write_text('<Patient xmlns="http://hl7.org/fhir">\n  <id value="a">\n</Patient>\n', encoding="utf-8")
    ok, errors = read(f)
    assert ok == [] and len(errors) == 1
    assert errors[0].location.line == 3 and "not well-formed XML" in errors[0].message


def test_xml_matches_json_for_fhirpath_inputs() -> None:
    folder = DATA / "vectors" / "fhirpath" / "r4" / "input"
    from lxml import etree
    for name in ("patient-example", "questionnaire-example"):
        converted = resource_to_json(etree.parse(str(folder / f"{name}.xml")).getroot())
        original = orjson.loads((folder / f"{name}.json").read_bytes())
        converted["text"].pop("div")
        original["text"].pop("div")
        assert converted == original


def test_uk_core_xml_examples_read(tmp_path: Path) -> None:
    folder = DATA / "ukcore-stu2" / "examples"
    ok, errors = read(folder)
    assert len(ok) + len(errors) == 140
    # the examples written without the FHIR namespace are reported, not guessed at
    no_namespace = {f"examples/{f.name}" for f in folder.glob("*.xml")
                    if 'xmlns="http://hl7.org/fhir"' not in f.read_text(encoding="utf-8")}
    assert {e.location.file for e in errors} == no_namespace
    assert all("not in the FHIR namespace" in e.message and e.location.line for e in errors)


def test_directory_zip_and_unknown_files(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_bytes(b'{"resourceType":"Patient","id":"p"}\n')
    (export / "notes.txt").write_text("hello", encoding="utf-8")
    (export / ".hidden.ndjson").write_text("junk", encoding="utf-8")
    archive = export / "more.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Observation.ndjson", b'{"resourceType":"Observation","id":"o"}\nnot json\n')
        z.writestr("b.json", b'{"resourceType":"Organization","id":"org"}')
    ok, errors = read(export)
    assert sorted(str(r.location) for r in ok) == [
        "export/Patient.ndjson:1", "export/more.zip!/Observation.ndjson:1", "export/more.zip!/b.json:1"]
    assert sorted(str(e.location) for e in errors) == ["export/more.zip!/Observation.ndjson:2", "export/notes.txt"]
    inputs = ExportTarget([export]).inputs()
    assert [i.path for i in inputs] == ["export/Patient.ndjson", "export/more.zip", "export/notes.txt"]
    assert all(len(i.sha256) == 64 for i in inputs)


def test_bad_zip(tmp_path: Path) -> None:
    f = tmp_path / "x.zip"
    f.write_bytes(b"not a zip")
    ok, errors = read(f)
    assert ok == [] and "not a readable zip" in errors[0].message
