"""HTML, CSV and run-to-run diff, rendered from real runs of the reference supplier."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fixtures.reference_server import TOKEN, ReferenceApi, ReferenceServer
from harness.cli import app
from harness.reports.diff import diff_reports
from tests.browser import FLAGS
from tests.helpers import reference_export as make_export

runner = CliRunner()
DEFECTS = ("nhs-bad-checksum", "resident-without-care-plan")


def _run(export_or_api: list[str], out: Path, formats: str = "json,html,csv,xlsx") -> Any:
    return runner.invoke(app, ["run", "asl-dscr-core", *export_or_api, "--out", str(out), "--format", formats,
                               "--as-of", "2026-11-01"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, defects in (("clean", ()), ("defective", DEFECTS)):
        export = make_export(tmp_path_factory, 12, 6, defects)
        folder = tmp_path_factory.mktemp(name)
        assert _run(["--export", str(export)], folder).exit_code == (0 if not defects else 1)
        out[name] = folder
    return out


def _report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def test_html_is_self_contained_and_says_what_matters(runs: dict[str, Path]) -> None:
    html = (runs["defective"] / "report.html").read_text(encoding="utf-8")
    assert '<strong class="outcome" id="decision-outcome">Fail</strong>' in html
    assert "did not meet 1 blocking requirement" in html and 'href="#rule-NHSNO-CHK-001"' in html
    assert "Self-assessment." in html and "Not signed." in html
    assert "export/Patient.ndjson:3" in html and "NHS number fails the modulus 11 check" in html
    assert re.search(r'data-level="MUST" data-outcome="fail">1<', html)
    assert re.search(r'data-level="SHOULD" data-outcome="fail">1<', html)
    # nothing is fetched: no external stylesheets, scripts, images or fonts
    assert not re.search(r"<(link|script|img)\b|url\(|@import", html)
    assert '<html lang="en">' in html and "Skip to the report" in html
    clean = (runs["clean"] / "report.html").read_text(encoding="utf-8")
    assert 'id="decision-outcome">Pass<' in clean and "No findings." in clean


def test_requirement_csv(runs: dict[str, Path]) -> None:
    rows = list(csv.DictReader(io.StringIO((runs["defective"] / "requirements.csv").read_text(encoding="utf-8"))))
    report = _report(runs["defective"])
    assert [r["rule"] for r in rows] == [r["id"] for r in report["rules"]]
    chk = next(r for r in rows if r["rule"] == "NHSNO-CHK-001")
    assert (chk["outcome"], chk["level"], chk["failed"]) == ("fail", "MUST", "1")
    assert chk["standard"] == "ISB 0149 Amd 136/2010"
    assert chk["clause"].startswith("NHS Data Dictionary") and chk["remediation"].startswith("Validate")


def test_diff_names_exactly_the_defects_rules(runs: dict[str, Path]) -> None:
    d = diff_reports(_report(runs["clean"]), _report(runs["defective"]))
    assert {r["rule"] for r in d.newly_failing} == {"NHSNO-CHK-001", "DSCR-CP-001"}
    assert d.newly_passing == [] and len(d.findings_added) == 2 and d.findings_removed == []
    back = diff_reports(_report(runs["defective"]), _report(runs["clean"]))
    assert {r["rule"] for r in back.newly_passing} == {"NHSNO-CHK-001", "DSCR-CP-001"} and not back.regressed
    res = runner.invoke(app, ["report", "diff", str(runs["clean"]), str(runs["defective"])])
    assert res.exit_code == 1 and "NHSNO-CHK-001 (MUST) pass → fail" in res.output
    assert runner.invoke(app, ["report", "diff", str(runs["defective"]), str(runs["clean"])]).exit_code == 0


def test_coverage_names_rules_without_data(runs: dict[str, Path]) -> None:
    coverage = _report(runs["clean"])["coverage"]
    assert coverage["resource_types"]["Patient"] == 12
    assert "ODS-FMT-001" not in coverage["without_data"]
    assert coverage["subjects"]["NHSNO-CHK-001"] == 12


def test_api_run_csv_and_html_link_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REF_TOKEN", TOKEN)
    with ReferenceServer(ReferenceApi(residents=5, defects=["no-auth"])) as server:
        res = _run(["--api", server.url, "--token-env", "REF_TOKEN", "--allow-insecure-local"], tmp_path)
    assert res.exit_code == 1
    rows = {r["rule"]: r for r in csv.DictReader(io.StringIO((tmp_path / "requirements.csv").read_text()))}
    evidence = rows["API-AUTH-001"]["evidence"].split(";")
    assert evidence and all((tmp_path / "evidence" / f"{ex}.json").is_file() for ex in evidence)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f'href="evidence/{evidence[0]}.json"' in html
    coverage = _report(tmp_path)["coverage"]
    assert {"identifier", "family", "birthdate", "_count"} <= set(coverage["search_parameters"])


def test_browser_renders_the_report(chromium: str, runs: dict[str, Path], tmp_path: Path) -> None:
    page = (runs["defective"] / "report.html").as_uri()
    flags = [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'id="decision-outcome">Fail</strong>' in dom
    assert 'data-level="MUST" data-outcome="fail">1</td>' in dom
    assert "NHS number fails the modulus 11 check" in dom
    shot = runs["defective"] / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", page], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_for_people_in_chromium(chromium: str, runs: dict[str, Path]) -> None:
    from tests.browser import artifacts, browser

    report = _report(runs["defective"])
    titles = {r.get("standard_title") or r["standard"] for r in report["rules"]}
    assert "care-assure 0.1.0" not in titles and len(titles) < len({r["standard"] for r in report["rules"]})
    with browser(chromium) as b:
        page = b.new_page(viewport={"width": 1280, "height": 1000})
        page.goto((runs["defective"] / "report.html").as_uri())
        # first screen: the decision, what it means, what to fix first, by standard with counts
        assert page.inner_text("#decision-outcome") == "Fail"
        assert "cannot be assured" in page.inner_text("#decision-meaning")
        fix = page.locator("ol.fixfirst")
        assert fix.bounding_box()["y"] < 1000
        assert re.search(r"NHS Number: 1 requirement not met, 1 finding", fix.inner_text())
        # contents: one entry per standard group, each leading to its section
        groups = page.locator("section.standard h3")
        shown = [groups.nth(i).inner_text() for i in range(groups.count())]
        assert sorted(shown) == sorted(titles) and len(shown) == len(set(shown))
        contents = page.locator("nav.contents a")
        assert contents.count() == len(shown) + 4
        for i in range(contents.count()):
            target = contents.nth(i).get_attribute("href")
            assert page.locator(target).count() == 1, target
        # where it failed, in words, with the file:line as detail
        nhs = page.locator("#rule-NHSNO-CHK-001")
        assert nhs.get_attribute("open") is not None  # not met: unfolded
        assert re.search(r"Patient \S+, NHS number \(identifier\)", nhs.inner_text())
        assert "export/Patient.ndjson:3" in nhs.inner_text()
        passing = page.locator("details.rule.o-pass")
        assert passing.count() > 10 and passing.first.get_attribute("open") is None  # passing rules folded
        page.screenshot(path=str(artifacts("report") / "defective-first-screen.png"))
        # filters work offline, without script: hide passing rules, then MUST rules
        page.uncheck("#show-pass")
        assert not any(passing.nth(i).is_visible() for i in range(passing.count()))
        assert nhs.is_visible()
        page.uncheck("#show-MUST")
        assert not nhs.is_visible()
        page.check("#show-MUST")
        page.check("#show-pass")
        assert passing.first.is_visible()
        page.screenshot(path=str(artifacts("report") / "defective-full.png"), full_page=True)
        pdf = page.pdf(format="A4")
        assert pdf[:5] == b"%PDF-" and len(pdf) > 20_000
        clean = b.new_page(viewport={"width": 1280, "height": 1000})
        clean.goto((runs["clean"] / "report.html").as_uri())
        assert clean.inner_text("#decision-outcome") == "Pass" and clean.locator("ol.fixfirst").count() == 0
        clean.screenshot(path=str(artifacts("report") / "clean-first-screen.png"))


def test_report_is_honest_about_caps(runs: dict[str, Path]) -> None:
    from harness.reports.html import render_html

    report = _report(runs["defective"])
    rule = next(r for r in report["rules"] if r["id"] == "NHSNO-CHK-001")
    rule["counts"]["failed"] = 554
    html = render_html(report).decode("utf-8")
    assert "1 of 554 shown; the counts are exact" in html
    assert "report.json" not in html.split('id="coverage"')[0]  # never "the full list is in report.json"


def test_xlsx_workbook_has_one_row_per_rule_in_force(runs: dict[str, Path], tmp_path: Path) -> None:
    import openpyxl

    from harness.reports.xlsx import render_xlsx

    report = _report(runs["defective"])
    nhs = next(f for f in report["findings"] if f["rule"] == "NHSNO-CHK-001")
    nhs["message"] = '=HYPERLINK("http://evil.example","click")'  # what a hostile export could put in a finding
    path = tmp_path / "requirements.xlsx"
    path.write_bytes(render_xlsx(report))
    wb = openpyxl.load_workbook(path)
    sheet = wb["Requirements"]
    header = [c.value for c in sheet[1]]
    assert header[:6] == ["Standard", "Rule", "Requirement", "Clause", "Level", "Outcome"]
    rows = {row[1]: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {r["id"] for r in report["rules"]} and sheet.max_row == len(report["rules"]) + 1
    assert rows["NHSNO-CHK-001"]["Outcome"] == "fail" and rows["NHSNO-CHK-001"]["Failed"] == 1
    assert rows["NHSNO-CHK-001"]["Standard"] == "NHS Number"
    assert all(c.data_type != "f" for ws in wb.worksheets for row in ws.iter_rows() for c in row)
    findings = list(wb["Findings"].iter_rows(min_row=2, values_only=True))
    assert len(findings) == len(report["findings"]) and any(f[4].startswith("=HYPERLINK") for f in findings)
    assert render_xlsx(report) == render_xlsx(report)  # the same report gives the same workbook
    ran = openpyxl.load_workbook(runs["defective"] / "requirements.xlsx")  # written by `run --format …,xlsx`
    assert ran["Requirements"].max_row == len(report["rules"]) + 1
