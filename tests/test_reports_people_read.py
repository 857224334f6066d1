"""HTML, CSV and run-to-run diff, rendered from real runs of the reference supplier."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fixtures.reference_server import TOKEN, ReferenceApi, ReferenceServer
from harness.cli import app
from harness.reports.diff import diff_reports
from tests.helpers import reference_export as make_export

runner = CliRunner()
DEFECTS = ("nhs-bad-checksum", "resident-without-care-plan")


def _run(export_or_api: list[str], out: Path, formats: str = "json,html,csv") -> Any:
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


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found or os.environ.get("CARE_ASSURE_NO_APT"):
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:  # the test set-up installs Debian's chromium when missing
        for step in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                     ["apt-get", "install", "-y", "-q", "chromium"]):
            subprocess.run(step, check=False, capture_output=True, timeout=600)
            if shutil.which("chromium"):
                break
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[str]:
    path = _chromium()
    if path is None:
        pytest.skip("headless Chromium is not installed and could not be installed here")
    yield path


def test_browser_renders_the_report(chromium: str, runs: dict[str, Path], tmp_path: Path) -> None:
    page = (runs["defective"] / "report.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'id="decision-outcome">Fail</strong>' in dom
    assert 'data-level="MUST" data-outcome="fail">1</td>' in dom
    assert "NHS number fails the modulus 11 check" in dom
    shot = runs["defective"] / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", page], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
