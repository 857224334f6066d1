"""CSV exports through the data dictionary: the same findings as the NDJSON export, every bad cell located."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fixtures.csv_writer import write_csv
from fixtures.export_generator import Generator, write_ndjson
from harness.cli import app
from harness.errors import ConfigurationError
from harness.targets.csv_export import load_map, shipped_maps
from harness.targets.export import ExportTarget
from tests.helpers import run_suite

AS_OF = dt.date(2026, 11, 1)
MAPPED = ("Patient", "MedicationAdministration")
# The rules whose elements the shipped mappings carry: on those, CSV and NDJSON must agree finding for finding.
COVERED = ("NHSNO-FMT-001", "NHSNO-CHK-001", "NHSNO-CHK-002", "NHSNO-UNQ-001", "MODS-PD-001", "MODS-PD-002",
           "MODS-PD-003", "MODS-PD-004", "MODS-LANG-002", "DMD-CHK-001", "DSCR-MAR-001")
DEFECTS = ("nhs-bad-checksum", "nhs-with-spaces", "nhs-repeated-digit", "nhs-duplicate", "no-birth-date",
           "no-ethnic-category", "no-gender", "ethnic-code-unlisted", "language-bad-tag", "not-done-without-reason")
runner = CliRunner()


def _findings(report: dict[str, Any], ids: set[str]) -> set[tuple[str, str]]:
    return {(f["rule"], f["resource_id"]) for f in report["findings"]
            if f["rule"] in COVERED and f["resource_id"] in ids}


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in report["rules"] if r["id"] in COVERED}


@pytest.mark.parametrize("defect", [None, *DEFECTS])
def test_the_csv_export_gives_the_ndjson_findings_for_the_rules_the_mapping_covers(
        defect: str | None, tmp_path: Path) -> None:
    resources = list(Generator(6, seed=4, defects=(defect,) if defect else ()).resources())
    write_ndjson(resources, tmp_path / "ndjson")
    write_csv(resources, tmp_path / "csv", dialect="cp1252" if defect == "no-gender" else "utf-8")
    from_ndjson = run_suite(tmp_path / "ndjson", as_of=AS_OF).report
    from_csv = run_suite(tmp_path / "csv", as_of=AS_OF).report
    ids = {r["id"] for r in resources if r["resourceType"] in MAPPED}
    assert _findings(from_csv, ids) == _findings(from_ndjson, ids)
    assert _outcomes(from_csv) == _outcomes(from_ndjson)
    assert from_csv["run"]["resource_counts"] == {t: n for t, n in from_ndjson["run"]["resource_counts"].items()
                                                  if t in MAPPED}
    if defect:  # the defect is seen, on the row and column it is in
        rules = {f["rule"] for f in from_csv["findings"] if f["rule"] in COVERED}
        assert rules, defect
    read = [f for f in from_csv["findings"] if f["rule"] == "HARNESS-READ-001"]
    assert read == []


def _csv(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder = tmp_path / "export"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(text.encode(encoding))
    return folder


def _run(folder: Path, *extra: str | Path) -> dict[str, Any]:
    out = folder.parent / "out"
    res = runner.invoke(app, ["run", "asl-dscr-core", "--export", str(folder), "--out", str(out), "--as-of",
                              "2026-11-01", "-q", *map(str, extra)])
    assert res.exit_code in (0, 1, 3), res.output
    return dict(json.loads((out / "report.json").read_text(encoding="utf-8")))


def _where(report: dict[str, Any], rule: str) -> list[tuple[int | None, str | None, str]]:
    return [(f["line"], f.get("column"), f["message"]) for f in report["findings"] if f["rule"] == rule]


HEADER = "resident_id,NHS number,Surname,Forenames,Date of birth,Sex,Ethnicity,Language\n"


def test_each_bad_cell_is_found_with_its_row_and_column(tmp_path: Path) -> None:
    folder = _csv(tmp_path, "residents.csv", HEADER
                  + "r1,9434765919,Okafor,Ada,02/03/1941,F,A,en\n"
                  + "r2,9434765918,Bennett,Joe,11/04/1950,M,B,en\n"  # check digit wrong
                  + "r3,9434765870,Hughes,Sam,31/02/1950,Q,C,en\n"  # impossible date, unknown gender code
                  + "r4,9434765889,Patel,Raj,01/01/1945,M\n")  # a broken row: two fields short
    report = _run(folder)
    assert _where(report, "NHSNO-CHK-001") == [
        (3, "NHS number", "NHS number fails the modulus 11 check: the check digit does not match")]
    assert [(line, column) for line, column, _ in _where(report, "FHIR-BIND-001")] == [(4, "Sex")]
    assert _where(report, "HARNESS-READ-001") == [
        (4, "Date of birth", "not a real date (day/month/year); the cell was not mapped"),
        (5, None, "row has 6 fields, the header has 8; not read (a stray delimiter or quote?)"),
    ]
    assert report["decision"]["outcome"] != "pass"
    where = next(f["location"] for f in report["findings"] if f["rule"] == "NHSNO-CHK-001")
    assert where == "export/residents.csv:3, column 'NHS number'"
    assert "9434765918" not in json.dumps(report)  # the finding says where, never the number


def test_a_bad_dmd_cell_in_a_mar_chart_is_found_with_its_row_and_column(tmp_path: Path) -> None:
    folder = _csv(tmp_path, "mar.csv", "administration_id,resident_nhs_number,dm+d code,time_given,status\n"
                  "a1,9434765919,39720311000001101,01/10/2026 08:00,Given\n"
                  "a2,9434765919,39720311000001102,01/10/2026 20:00,Given\n")
    report = _run(folder)
    assert [(line, column) for line, column, _ in _where(report, "DMD-CHK-001")] == [(3, "dm+d code")]


@pytest.mark.parametrize(("encoding", "delimiter"), [("utf-8", ","), ("utf-8-sig", ";"), ("cp1252", "\t"),
                                                     ("cp1252", "|")])
def test_encodings_and_delimiters_are_detected(tmp_path: Path, encoding: str, delimiter: str) -> None:
    rows = [["resident_id", "nhs_number", "family_name", "given_names", "birth_date"],
            ["r1", "9434765919", "Bénédicte-Ó Súilleabháin", "Zoë", "1941-03-02"]]
    folder = _csv(tmp_path, "residents.csv", "\r\n".join(delimiter.join(r) for r in rows) + "\r\n", encoding)
    located = [i for i in ExportTarget([folder]).items() if hasattr(i, "resource")]
    assert len(located) == 1
    patient = located[0].resource  # type: ignore[union-attr]
    assert patient["name"] == [{"family": "Bénédicte-Ó Súilleabháin", "given": ["Zoë"]}]
    assert patient["id"] == "r1" and patient["birthDate"] == "1941-03-02"


def test_mar_times_are_local_wall_clock_times_with_their_offset(tmp_path: Path) -> None:
    folder = _csv(tmp_path, "mar.csv", "administration_id,resident_nhs_number,dmd_code,time_given,status\n"
                  "a1,9434765919,39720311000001101,01/07/2026 08:00,Given\n"
                  "a2,9434765919,39720311000001101,01/12/2026 08:00,refused\n")
    items = [i.resource for i in ExportTarget([folder]).items() if hasattr(i, "resource")]  # type: ignore[union-attr]
    assert [(r["effectiveDateTime"], r["status"]) for r in items] == [
        ("2026-07-01T08:00:00+01:00", "completed"), ("2026-12-01T08:00:00+00:00", "not-done")]
    assert items[0]["subject"] == {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                                  "value": "9434765919"}}


def test_a_header_no_mapping_fits_is_a_finding_and_a_suppliers_mapping_is_used_first(tmp_path: Path) -> None:
    folder = _csv(tmp_path, "odd.csv", "code,label\n1,x\n")
    report = _run(folder)
    assert _where(report, "HARNESS-READ-001")[0][2].startswith("no CSV mapping fits this header (2 columns)")
    own = tmp_path / "own.yaml"
    own.write_text("mapping: supplier-residents\ntitle: Ours\nversion: 1.0.0\nresource: Patient\n"
                   "id: {column: code, prefix: res-}\ncolumns:\n"
                   "  - {column: code, required: true, ignore: true}\n"
                   "  - {column: label, set: 'name[0].text'}\n", encoding="utf-8")
    located = [i.resource for i in ExportTarget([folder], csv_maps=[own]).items()  # type: ignore[union-attr]
               if hasattr(i, "resource")]
    assert located == [{"resourceType": "Patient", "id": "res-1", "name": [{"text": "x"}]}]


def test_a_broken_mapping_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mapping: x\ntitle: X\nversion: '1'\nresource: Patient\nid: {}\ncolumns:\n"
                   "  - {column: a, set: 'Name.Family'}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_map(bad)
    problem = caught.value.problems[0]
    assert problem.file == str(bad) and problem.line == 7
    res = runner.invoke(app, ["run", "asl-dscr-core", "--export", str(tmp_path), "--csv-map", str(bad),
                              "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "bad.yaml:7" in res.output and "Traceback" not in res.output


def test_the_shipped_mappings_load() -> None:
    assert sorted(m.id for m in shipped_maps()) == ["mar-chart", "resident-list"]


def test_mappings_are_linted_like_packs(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["packs", "lint-csv-map"])
    assert ok.exit_code == 0 and "2 mapping(s) valid, 0 problem(s)" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("mapping: x\ntitle: X\nversion: '1'\nresource: patient\nid: {}\ncolumns: []\n", encoding="utf-8")
    res = runner.invoke(app, ["packs", "lint-csv-map", str(bad)])
    assert res.exit_code == 2 and f"{bad}:4" in " ".join(res.output.split()) and "Traceback" not in res.output
