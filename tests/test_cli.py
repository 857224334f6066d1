"""The command line: exit codes, reports that validate against their schema, determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from lxml import etree
from typer.testing import CliRunner

from harness.cli import app
from tests.helpers import reference_export as make_export

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "reports" / "report.schema.json").read_text(encoding="utf-8"))
runner = CliRunner()


@pytest.fixture(scope="module")
def reference_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_export(tmp_path_factory, 30, 3)


@pytest.fixture(scope="module")
def broken_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_export(tmp_path_factory, 30, 3, ("nhs-bad-checksum", "resident-without-care-plan"))
    with (path / "Observation.ndjson").open("ab") as f:
        f.write(b"{not json\n")
    return path


def _bad_line(export: Path) -> int:
    """The line number of the unreadable line appended to the broken export's observations."""
    return len((export / "Observation.ndjson").read_bytes().splitlines())


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def load(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_pass_exit_zero_and_reports_validate(reference_export: Path, tmp_path: Path) -> None:
    res = invoke("run", "asl-dscr-core", "--export", reference_export, "--out", tmp_path, "--as-of", "2026-11-01")
    assert res.exit_code == 0, res.output
    assert "decision: PASS" in res.output and "Self-assessment" in res.output
    report = load(tmp_path)
    jsonschema.validate(report, SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert report["decision"] == {"outcome": "pass", "reasons": [], "warnings": []}
    assert report["run"]["as_of"] == "2026-11-01"
    assert report["run"]["assessment"]["kind"] == "self-assessment"
    assert {p["id"] for p in report["run"]["packs"]} >= {"identifiers.nhs-number", "fhir.r4-base"}
    assert all(len(i["sha256"]) == 64 for i in report["run"]["target"]["inputs"])
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert junit.get("tests") == str(len(report["rules"])) and junit.get("failures") == "0"


def test_fail_exit_one_with_findings_and_junit(broken_export: Path, tmp_path: Path) -> None:
    res = invoke("run", "asl-dscr-core", "--export", broken_export, "--out", tmp_path, "--as-of", "2026-11-01")
    assert res.exit_code == 1, res.output
    report = load(tmp_path)
    jsonschema.validate(report, SCHEMA)
    assert report["decision"]["outcome"] == "fail"
    assert {r["rule"] for r in report["decision"]["reasons"]} == {"NHSNO-CHK-001", "HARNESS-READ-001"}
    assert [w["rule"] for w in report["decision"]["warnings"]] == ["DSCR-CP-001"]
    by_rule = {f["rule"]: f for f in report["findings"]}
    assert by_rule["NHSNO-CHK-001"]["location"] == "export/Patient.ndjson:3"
    assert by_rule["NHSNO-CHK-001"]["resource_id"] == "resident-0002"
    assert by_rule["HARNESS-READ-001"]["location"] == f"export/Observation.ndjson:{_bad_line(broken_export)}"
    assert by_rule["HARNESS-READ-001"]["kind"] == "error"
    junit_schema = etree.XMLSchema(etree.parse(str(ROOT / "reports" / "junit.xsd")))
    junit_schema.assertValid(etree.parse(str(tmp_path / "junit.xml")))
    cases = {c.get("name", "").split(":")[0]: c for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert cases["NHSNO-CHK-001"].find("failure") is not None
    assert cases["HARNESS-READ-001"].find("error") is not None
    props = {p.get("name"): p.get("value") for p in cases["NHSNO-CHK-001"].iter("property")}
    assert props["rule_id"] == "NHSNO-CHK-001" and props["level"] == "MUST" and "ISB 0149" in props["standard"]


def test_report_is_deterministic(broken_export: Path, tmp_path: Path) -> None:
    def strip(path: Path) -> dict[str, Any]:
        data = load(path)
        for key in ("id", "started", "finished"):
            data["run"].pop(key)
        return data

    for n in (1, 2):
        assert invoke("run", "asl-dscr-core", "--export", broken_export, "--out", tmp_path / str(n),
                      "--as-of", "2026-11-01").exit_code == 1
    one, two = (tmp_path / "1" / "report.json").read_bytes(), (tmp_path / "2" / "report.json").read_bytes()
    assert strip(tmp_path / "1") == strip(tmp_path / "2")
    # only the three volatile lines differ
    differ = [a for a, b in zip(one.splitlines(), two.splitlines(), strict=True) if a != b]
    assert len(differ) <= 3


@pytest.mark.parametrize(("args", "message"), [
    (["run", "asl-dscr-cor", "--export", "."], "unknown suite 'asl-dscr-cor' — did you mean 'asl-dscr-core'?"),
    (["run", "asl-dscr-core", "--export", "/nonexistent/x"], "/nonexistent/x: export path does not exist"),
    (["run", "asl-dscr-core", "--export", ".", "--format", "pdf"], "unknown report format(s): pdf"),
    (["run", "asl-dscr-core", "--export", ".", "--as-of", "2026-13-01"], "is not a date"),
])
def test_usage_errors_exit_two(args: list[str], message: str) -> None:
    res = invoke(*args)
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_broken_extra_pack_is_a_configuration_error(reference_export: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "x.yaml").write_text("pack: x\ntitle: x\n", encoding="utf-8")
    res = invoke("run", "asl-dscr-core", "--export", reference_export, "--packs-dir", packs, "--out", tmp_path)
    assert res.exit_code == 2
    assert "x.yaml:1: (top level): 'version' is a required property" in res.output


def test_packs_lint_exit_codes(tmp_path: Path) -> None:
    ok = invoke("packs", "lint")
    assert ok.exit_code == 0 and "0 problem(s)" in ok.output
    (tmp_path / "bad.yaml").write_text((ROOT / "standards" / "identifiers" / "ods.yaml").read_text(
        encoding="utf-8").replace("kind: ods-code", "kind: ods_code"), encoding="utf-8")
    bad = invoke("packs", "lint", tmp_path)
    assert bad.exit_code == 2
    assert "bad.yaml:27: [ODS-FMT-001] unknown check kind 'ods_code' — did you mean 'ods-code'?" in bad.output


def test_lists(tmp_path: Path) -> None:
    suites = invoke("suites", "list")
    assert suites.exit_code == 0 and "asl-dscr-core" in suites.output
    packs = invoke("packs", "list")
    assert packs.exit_code == 0 and "identifiers.nhs-number" in packs.output


def test_sarif_output(broken_export: Path, tmp_path: Path) -> None:
    from sarif_pydantic import Sarif

    res = invoke("run", "asl-dscr-core", "--export", broken_export, "--out", tmp_path, "--format", "json,sarif",
                 "--as-of", "2026-11-01")
    assert res.exit_code == 1
    raw = json.loads((tmp_path / "report.sarif").read_text(encoding="utf-8"))
    Sarif.model_validate(raw)  # the SARIF 2.1.0 object model
    run = raw["runs"][0]
    assert raw["version"] == "2.1.0"
    report = load(tmp_path)
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r["id"] for r in report["rules"]]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    chk = by_rule["NHSNO-CHK-001"]
    assert chk["level"] == "error" and run["tool"]["driver"]["rules"][chk["ruleIndex"]]["id"] == "NHSNO-CHK-001"
    assert chk["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "export/Patient.ndjson", "uriBaseId": "EXPORTROOT"}, "region": {"startLine": 3}}
    assert by_rule["DSCR-CP-001"]["level"] == "warning"
    assert by_rule["HARNESS-READ-001"]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": _bad_line(broken_export)}
    assert len(run["results"]) == len(report["findings"])


SARIF_SCHEMA_ENV = __import__("os").environ.get("CARE_ASSURE_SARIF_SCHEMA")


@pytest.mark.skipif(SARIF_SCHEMA_ENV is None, reason="CARE_ASSURE_SARIF_SCHEMA is not set; `make test` fetches the "
                    "SARIF 2.1.0 schema from the npm registry and sets it")
def test_sarif_validates_against_the_official_schema(broken_export: Path, tmp_path: Path) -> None:
    schema_path = Path(str(SARIF_SCHEMA_ENV))
    assert schema_path.is_file(), f"CARE_ASSURE_SARIF_SCHEMA names {schema_path}, which does not exist"
    assert invoke("run", "asl-dscr-core", "--export", broken_export, "--out", tmp_path, "--format", "sarif",
                  "--as-of", "2026-11-01").exit_code == 1
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    assert "2.1.0" in schema["title"]
    validator = jsonschema.Draft4Validator(schema)
    sarif = json.loads((tmp_path / "report.sarif").read_text(encoding="utf-8"))
    assert sarif["runs"][0]["results"], "the broken export must give results to validate"
    validator.validate(sarif)
    # The schema is strict enough to catch a malformed result: the check can fail.
    sarif["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator.is_valid(sarif)
