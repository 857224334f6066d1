"""API properties against the reference supplier: the conforming server holds them all; each
targeted defect is found, shrunk to a minimal counterexample, stored, and replayed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixtures.reference_server import API_DEFECTS, TOKEN, ReferenceApi, ReferenceServer
from harness.cli import app

runner = CliRunner()
PROPERTY_DEFECTS = {name: d for name, d in API_DEFECTS.items() if any(r.startswith("API-PROP-") for r in d.rules)}


def _run(url: str, out: Path, *extra: str) -> object:
    return runner.invoke(app, ["run", "asl-dscr-api-properties", "--api", url, "--token-env", "REF_TOKEN",
                               "--allow-insecure-local", "--allow-writes", "--out", str(out), "--format", "json",
                               "--as-of", "2026-11-01", *extra])


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REF_TOKEN", TOKEN)
    yield


def test_conforming_server_holds_every_property(tmp_path: Path) -> None:
    with ReferenceServer(ReferenceApi(residents=3)) as server:
        res = _run(server.url, tmp_path, "--examples", "10")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    props = [r for r in report["rules"] if r["id"].startswith("API-PROP-")]
    assert len(props) == 6 and all(r["outcome"] == "pass" and r["counts"]["subjects"] >= 10 for r in props)
    for name in ("round-trip", "rejection", "nhs-search", "if-match", "paging"):  # progress, one line each in a log
        assert re.search(rf"property {name}: 10 examples in \d+\.\d s", res.output), name
    assert re.search(r"property stateful: 10 programs in \d+\.\d s", res.output)


def test_properties_need_allow_writes(tmp_path: Path) -> None:
    with ReferenceServer(ReferenceApi(residents=3)) as server:
        res = runner.invoke(app, ["run", "asl-dscr-api-properties", "--api", server.url, "--token-env",
                                  "REF_TOKEN", "--allow-insecure-local", "--out", str(tmp_path)])
    assert res.exit_code == 1
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {r["outcome"] for r in report["rules"] if r["id"].startswith("API-PROP-")} == {"error"}
    assert "pass --allow-writes" in report["rules"][1]["message"]


@pytest.mark.parametrize("defect", sorted(PROPERTY_DEFECTS))
def test_each_defect_is_found_shrunk_and_replayed(defect: str, tmp_path: Path) -> None:
    rules = {r for r in PROPERTY_DEFECTS[defect].rules if r.startswith("API-PROP-")}
    with ReferenceServer(ReferenceApi(residents=3, defects=[defect])) as server:
        res = _run(server.url, tmp_path, "--examples", "20", "--seed", "7")
        report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
        failing = {r["id"] for r in report["rules"] if r["outcome"] not in ("pass", "not-applicable")}
        assert failing == rules, res.output
        rule = sorted(rules)[0]
        finding = next(f for f in report["findings"] if f["rule"] == rule)
        match = re.search(r"minimal counterexample (CE-\d+) \(seed 7\)", finding["message"])
        assert match, finding["message"]
        ce_file = tmp_path / "evidence" / f"{match.group(1)}.json"
        ce = json.loads(ce_file.read_text(encoding="utf-8"))
        assert ce["rule"] == rule and ce["synthetic"] and ce["exchanges"]
        assert all((tmp_path / "evidence" / f"{ex}.json").is_file() for ex in ce["exchanges"])
        assert TOKEN not in json.dumps(ce)
        still = runner.invoke(app, ["replay", str(ce_file), "--token-env",
                                    "REF_TOKEN", "--allow-insecure-local"])
        assert still.exit_code == 1 and "still fails" in still.output
    with ReferenceServer(ReferenceApi(residents=3)) as fixed:
        gone = runner.invoke(app, ["replay", str(ce_file), "--api", fixed.url,
                                   "--token-env", "REF_TOKEN", "--allow-insecure-local"])
    assert gone.exit_code == 0 and "no longer fails" in gone.output


def test_counterexamples_are_minimal() -> None:
    """Shrinking reaches the smallest example that still shows the defect."""
    from harness.evidence import EvidenceStore, Redactor
    from harness.properties.api import PROPERTIES, run_property
    from harness.targets.http_client import ClientConfig, FhirClient

    with ReferenceServer(ReferenceApi(residents=2, defects=["paging-repeats"])) as server:
        client = FhirClient(ClientConfig(base_url=server.url, token=TOKEN, allow_insecure_local=True),
                            EvidenceStore(Redactor()))
        outcome = run_property(PROPERTIES["paging"], client, examples=20, seed=3)
    assert outcome.example == {"matches": 3, "count": 2}


def test_the_property_kind_names_every_property() -> None:
    """The kind lists the names without importing Hypothesis; they must be the properties that exist."""
    from harness.checks.property import PROPERTY_NAMES
    from harness.properties.api import PROPERTIES

    assert sorted(PROPERTY_NAMES) == sorted(PROPERTIES)


def _patients(api: ReferenceApi) -> list[str]:
    return sorted(r["id"] for r in api.store.of_type("Patient"))


def test_property_runs_and_replays_leave_the_sandbox_as_they_found_it(tmp_path: Path) -> None:
    sandbox = ReferenceApi(residents=3)
    before = _patients(sandbox)
    with ReferenceServer(sandbox) as server:
        res = _run(server.url, tmp_path / "props", "--examples", "8")
        assert res.exit_code == 0, res.output
        assert _patients(sandbox) == before  # every record the examples created was deleted again
        cleanups = [json.loads(p.read_text(encoding="utf-8"))
                    for p in (tmp_path / "props" / "evidence").glob("CLEANUP-*.json")]
        assert len(cleanups) == 6 and all(c["left_behind"] == [] for c in cleanups)
        assert sum(len(c["deleted"]) for c in cleanups) >= 8
        assert all(c["summary"].startswith("deleted the ") for c in cleanups)
        # so the next conformance run sees only the sandbox's own data
        after = runner.invoke(app, ["run", "asl-dscr-core", "--api", server.url, "--token-env", "REF_TOKEN",
                                    "--allow-insecure-local", "--out", str(tmp_path / "core"),
                                    "--as-of", "2026-11-01", "-q"])
        assert after.exit_code == 0, after.output
    broken = ReferenceApi(residents=3, defects=["drop-second-given"])
    with ReferenceServer(broken) as server:
        _run(server.url, tmp_path / "broken", "--examples", "20", "--seed", "7")
        report = json.loads((tmp_path / "broken" / "report.json").read_text(encoding="utf-8"))
        finding = next(f for f in report["findings"] if f["rule"] == "API-PROP-ROUNDTRIP-001")
        ce = re.search(r"(CE-\d+)", finding["message"])
        assert ce
        state = _patients(broken)
        replayed = runner.invoke(app, ["replay", str(tmp_path / "broken" / "evidence" / f"{ce.group(1)}.json"),
                                       "--token-env", "REF_TOKEN", "--allow-insecure-local"])
        assert replayed.exit_code == 1 and "replay deleted the 1 record(s) it created" in replayed.output
        assert _patients(broken) == state
