"""The pytest plugin, as a supplier's CI would use it: a throwaway project run by pytester."""

from __future__ import annotations

import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fixtures.export_generator import Generator, write_ndjson
from fixtures.reference_server import CLIENT_ID, CLIENT_SECRET, TOKEN, ReferenceApi, ReferenceServer
from harness import runner
from harness.pytest_plugin import LEVELS
from harness.targets import http_client
from tests.helpers import reference_export as make_export
from tests.helpers import run_suite

# pytester's in-process runs drop modules first imported inside them, and C extensions (PyYAML's
# parser) or module-level classes (requests' CookieJar) then disagree with the re-imported ones.
# Importing the harness here keeps one copy for all runs.
assert runner.assess and http_client.FhirClient

ROOT = Path(__file__).resolve().parents[1]
SUITE = ["--assure-suite", "asl-dscr-core", "--assure-as-of", "2026-11-01", "-p", "no:randomly"]


@pytest.fixture(scope="module")
def clean_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_export(tmp_path_factory, 10, 4)


@pytest.fixture(scope="module")
def broken_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_export(tmp_path_factory, 10, 4, ("nhs-bad-checksum", "resident-without-care-plan"))


def _expected(export: Path, level: str = "must", keep: Any = None, **extra: int) -> dict[str, int]:
    """The item outcomes the plugin must report, worked out from an engine run on the same export."""
    report = run_suite(export, as_of=dt.date(2026, 11, 1)).report
    counts: Counter[str] = Counter(extra)
    for rule in report["rules"]:
        if keep is not None and not keep(rule):
            continue
        outcome = rule["outcome"]
        if outcome == "pass":
            counts["passed"] += 1
        elif outcome in ("not-applicable", "waived"):
            counts["skipped"] += 1
        elif outcome == "error" or rule["level"] in LEVELS[level]:
            counts["failed"] += 1
        else:
            counts["xfailed"] += 1
    assert counts["passed"] >= 4
    return dict(counts)


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "XFAIL", "SKIPPED", "ERROR"):
            if line.startswith(word + " ") and "care-assure[" in line:
                found[line.split("::")[1].split(" ")[0]] = word
    return found


def test_inert_without_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "care-assure[" not in result.stdout.str()


def test_one_item_per_rule_with_outcomes_junit_and_exit_code(
        pytester: pytest.Pytester, broken_export: Path) -> None:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(*SUITE, "--assure-export", str(broken_export), "--junitxml", str(junit), "-rA")
    result.assert_outcomes(**_expected(broken_export))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = _outcomes(result)
    assert len(outcomes) >= 40  # one item per rule in force
    assert outcomes["NHSNO-CHK-001"] == "FAILED" and outcomes["DSCR-CP-001"] == "XFAIL"
    assert outcomes["HARNESS-READ-001"] == "PASSED"
    text = result.stdout.str()
    assert "Patient/resident-0002 at export/Patient.ndjson:3" in text and "Remediation:" in text
    assert "Traceback" not in text
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["NHSNO-CHK-001"].iter("property")}
    assert props["rule_id"] == "NHSNO-CHK-001" and props["level"] == "MUST"
    assert props["standard"] == "ISB 0149 Amd 136/2010" and props["clause"].startswith("NHS Data Dictionary")
    assert cases["NHSNO-CHK-001"].find("failure") is not None


def test_should_level_fails_the_build_when_asked(pytester: pytest.Pytester, broken_export: Path) -> None:
    result = pytester.runpytest(*SUITE, "--assure-export", str(broken_export), "--assure-level", "should")
    expected = _expected(broken_export, "should")
    assert expected["failed"] == 2 and "xfailed" not in expected
    result.assert_outcomes(**expected)


def test_selection_by_marker_and_keyword(pytester: pytest.Pytester, broken_export: Path) -> None:
    result = pytester.runpytest(*SUITE, "--assure-export", str(broken_export), "-m", "assure_should")
    result.assert_outcomes(**_expected(broken_export, keep=lambda r: r["level"] == "SHOULD"))
    result = pytester.runpytest(*SUITE, "--assure-export", str(broken_export), "-k", "NHSNO")
    result.assert_outcomes(**_expected(broken_export, keep=lambda r: "NHSNO" in r["id"]))
    result = pytester.runpytest(*SUITE, "--assure-export", str(broken_export), "-m",
                                "assure_pack_identifiers_ods")
    result.assert_outcomes(**_expected(broken_export, keep=lambda r: r["pack"] == "identifiers.ods"))


def test_clean_export_passes_with_exit_zero(pytester: pytest.Pytester, clean_export: Path) -> None:
    result = pytester.runpytest(*SUITE, "--assure-export", str(clean_export))
    expected = _expected(clean_export)
    assert "failed" not in expected and "xfailed" not in expected
    result.assert_outcomes(**expected)
    assert result.ret == pytest.ExitCode.OK


def test_error_outcome_fails_the_item(pytester: pytest.Pytester, tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_ndjson(Generator(5, seed=2).resources(), export)
    with (export / "Patient.ndjson").open("ab") as f:
        f.write(b"{broken\n")
    result = pytester.runpytest(*SUITE, "--assure-export", str(export), "-k", "HARNESS")
    result.assert_outcomes(failed=1)
    assert "could not be evaluated" in result.stdout.str()


def test_ini_configuration_fixtures_and_report(pytester: pytest.Pytester, broken_export: Path) -> None:
    pytester.makepyprojecttoml(f"""
[tool.pytest.ini_options]
assure_suite = "asl-dscr-core"
assure_export = ["{broken_export}"]
assure_as_of = "2026-11-01"
assure_report = "out"
""")
    pytester.makepyfile(test_own="""
def test_our_own_rule(assure_result, assure_target):
    failing = [r.rule for r in assure_result.rules if r.outcome.value == "fail"]
    assert failing == ["NHSNO-CHK-001", "DSCR-CP-001"]
    assert sum(1 for _ in assure_target.items()) > 100

def test_client_needs_api(assure_client):
    raise AssertionError("not reached: skipped without an API")
""")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(**_expected(broken_export, passed=1, skipped=1))  # + our two own tests
    report = json.loads((pytester.path / "out" / "report.json").read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "reports" / "report.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, schema)
    assert report["decision"]["outcome"] == "fail"


def test_xdist_gives_the_same_results_from_one_engine_run(
        pytester: pytest.Pytester, broken_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("ASSURE_RUNS_DIR", str(runs))
    pytester.makepyfile(**{f"test_own_{i}": f"""
import os, pathlib

def test_record_run_{i}(assure_report):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (pathlib.Path(os.environ["ASSURE_RUNS_DIR"]) / f"{{worker}}-{i}").write_text(assure_report["run"]["id"])
""" for i in range(4)})
    plain = pytester.runpytest_subprocess(*SUITE, "--assure-export", str(broken_export), "-rA")
    for f in runs.iterdir():
        f.unlink()
    parallel = pytester.runpytest_subprocess(*SUITE, "--assure-export", str(broken_export), "-n", "2", "-rA",
                                             "--assure-report", str(tmp_path / "out"))
    assert _outcomes(plain) == _outcomes(parallel)
    parallel.assert_outcomes(**_expected(broken_export, passed=4))
    assert plain.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    # the workers saw the controller's one run (one engine run), not runs of their own
    controller_run = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["run"]["id"]
    seen = {f.name: f.read_text() for f in runs.iterdir()}
    assert len(seen) == 4 and all(name.startswith("gw") for name in seen)
    assert set(seen.values()) == {controller_run}


@pytest.fixture(scope="module")
def reference_api() -> Iterator[str]:
    with ReferenceServer(ReferenceApi(residents=6)) as server:
        yield server.url


def test_against_the_reference_api(pytester: pytest.Pytester, reference_api: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERENCE_TOKEN", TOKEN)
    monkeypatch.setenv("REFERENCE_SECRET", CLIENT_SECRET)
    pytester.makepyfile(test_own="""
def test_own_api_check(assure_client):
    assert assure_client.request("GET", "metadata", auth=False).status == 200
""")
    result = pytester.runpytest(*SUITE, "--assure-api", reference_api, "--assure-token-env", "REFERENCE_TOKEN",
                                "--assure-allow-insecure-local", "-rA")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    outcomes = _outcomes(result)
    assert outcomes["API-PAT-SRCH-001"] == "PASSED" and len([k for k in outcomes if k.startswith("API-")]) == 12
    assert TOKEN not in result.stdout.str()
    oauth = pytester.runpytest(*SUITE, "--assure-api", reference_api, "--assure-allow-insecure-local",
                               "--assure-oauth-token-url", f"{reference_api}/oauth/token",
                               "--assure-client-id", CLIENT_ID, "--assure-client-secret-env", "REFERENCE_SECRET")
    assert oauth.ret == pytest.ExitCode.OK, oauth.stdout.str()
    # timeouts, page limit and evidence mode reach the client as they do from `care-assure run`
    kept = pytester.path / "kept"
    full = pytester.runpytest(*SUITE, "--assure-api", reference_api, "--assure-token-env", "REFERENCE_TOKEN",
                              "--assure-allow-insecure-local", "--assure-read-timeout", "20", "--assure-page-limit",
                              "3", "--assure-evidence", "full", "--assure-report", str(kept))
    report = json.loads((kept / "report.json").read_text(encoding="utf-8"))
    assert report["run"]["evidence"]["mode"] == "full", full.stdout.str()


def test_usage_errors_are_reported_without_traceback(pytester: pytest.Pytester, clean_export: Path) -> None:
    result = pytester.runpytest("--assure-suite", "no-such-suite", "--assure-export", str(clean_export))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown suite 'no-such-suite'" in result.stderr.str()
    result = pytester.runpytest("--assure-suite", "asl-dscr-core")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "give either --assure-export or --assure-api" in result.stderr.str()
    # the same options model as the command line: its bounds, its words
    for option, value, said in (("--assure-read-timeout", "0", "--assure-read-timeout must be between 0.1 and 3600"),
                                ("--assure-page-limit", "0", "--assure-page-limit must be between 1 and 100000"),
                                ("--assure-connect-timeout", "soon", "'soon' is not a number")):
        result = pytester.runpytest(*SUITE, "--assure-api", "https://x.example", option, value)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert said in result.stderr.str() and "Traceback" not in result.stderr.str()


def test_a_suite_that_blocks_should_rules_fails_ci_on_a_should_failure(
        pytester: pytest.Pytester, broken_export: Path) -> None:
    suite = pytester.path / "strict.yaml"
    suite.write_text((ROOT / "suites" / "asl-dscr-core.yaml").read_text(encoding="utf-8").replace(
        "blocking_levels: [MUST]", "blocking_levels: [MUST, SHOULD]"), encoding="utf-8")
    assert "blocking_levels: [MUST, SHOULD]" in suite.read_text(encoding="utf-8")
    result = pytester.runpytest("--assure-suite", str(suite), "--assure-as-of", "2026-11-01", "-p", "no:randomly",
                                "--assure-export", str(broken_export), "-rA")
    outcomes = _outcomes(result)
    assert outcomes["DSCR-CP-001"] == "FAILED"  # SHOULD, and this suite's policy blocks it: CI fails as the report does
    assert outcomes["NHSNO-CHK-001"] == "FAILED"
    assert "XFAIL" not in outcomes.values()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_collect_only_lists_the_rules_and_runs_nothing(pytester: pytest.Pytester, broken_export: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the assessment ran under --collect-only")

    monkeypatch.setattr(runner, "assess", never)
    report_dir = pytester.path / "reports"
    result = pytester.runpytest(*SUITE, "--assure-export", str(broken_export), "--assure-report", str(report_dir),
                                "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    listed = [line for line in result.outlines if "care-assure[asl-dscr-core]::" in line]
    in_force = run_suite(broken_export, as_of=dt.date(2026, 11, 1)).report["rules"]
    assert sorted(line.split("::")[1] for line in listed) == sorted(r["id"] for r in in_force)
    assert not report_dir.exists()


def test_export_option_with_a_space_or_an_equals_sign_is_the_same(pytester: pytest.Pytester,
                                                                 broken_export: Path) -> None:
    spaced = pytester.runpytest(*SUITE, "--assure-export", str(broken_export), "-rA")
    joined = pytester.runpytest(*SUITE, f"--assure-export={broken_export}", "-rA")
    assert _outcomes(spaced) == _outcomes(joined) and len(_outcomes(spaced)) >= 40
    # and a relative path means the same, from the directory pytest runs in
    relative = os.path.relpath(broken_export, pytester.path)
    assert _outcomes(pytester.runpytest(*SUITE, "--assure-export", relative, "-rA")) == _outcomes(spaced)
    assert _outcomes(pytester.runpytest(*SUITE, f"--assure-export={relative}", "-rA")) == _outcomes(spaced)
