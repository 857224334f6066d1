"""Certification rounds end to end: registry, waivers, decisions, signatures, audit log, assured list.

Everything goes through the `care-assure` commands on a real database file (and on a real
PostgreSQL server when one can be started), with the reference supplier's exports.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from harness.cli import app
from tests import postgres
from tests.helpers import reference_export as make_export

ROOT = Path(__file__).resolve().parents[1]
LIST_SCHEMA = json.loads((ROOT / "reports" / "assured-list.schema.json").read_text(encoding="utf-8"))
REPORT_SCHEMA = json.loads((ROOT / "reports" / "report.schema.json").read_text(encoding="utf-8"))
AS_OF = "2026-11-01"
TODAY = dt.date.today()
runner = CliRunner()


def cli(*args: str | Path, code: int | None = 0) -> Any:
    res = runner.invoke(app, [str(a) for a in args], env={"CARE_ASSURE_ACTOR": "assessor-1", "COLUMNS": "200"})
    if code is not None:
        assert res.exit_code == code, res.output
    return res


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "good": make_export(tmp_path_factory, 12, 7),
        # fails a MUST rule (NHSNO-CHK-001) and a SHOULD rule (DSCR-CP-001)
        "bad": make_export(tmp_path_factory, 12, 7, ("nhs-bad-checksum", "resident-without-care-plan")),
    }


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    cli("keys", "generate", "--out", d, "--name", "team")
    cli("keys", "generate", "--out", d, "--name", "other")
    return {"private": d / "team.key", "public": d / "team.pub", "other": d / "other.key",
            "other_public": d / "other.pub"}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir, reason = postgres.find_or_install()
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL server for the registry test: {reason}")
    with postgres.server(bin_dir) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'assure.db'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = create_engine(url)  # a fresh schema for each test
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


def _open_round(db: str, round_id: str = "R1", suite: str | Path = "asl-dscr-core", *extra: str | Path) -> None:
    cli("round", "open", round_id, "--suite", suite, "--as-of", AS_OF, "--opens", str(TODAY - dt.timedelta(days=1)),
        "--closes", str(TODAY + dt.timedelta(days=30)), "--db", db, *extra)


def _tamper_audit(db: str, seq: int) -> None:
    """What an insider with database access could do: bypass the append-only trigger and edit a row."""
    engine = create_engine(db)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = :seq"), {"seq": seq})
    engine.dispose()


def test_certification_round_end_to_end(db: str, exports: dict[str, Path], keys: dict[str, Path],
                                        tmp_path: Path) -> None:
    store = tmp_path / "store"
    _open_round(db)
    cli("supplier", "add", "goodco", "--name", "Good Care Systems", "--solution", "GoodRecord",
        "--solution-version", "4.1", "--care-setting", "residential", "--care-setting", "domiciliary",
        "--capability", "care-planning", "--capability", "emar", "--db", db)
    cli("supplier", "add", "badco", "--name", "Bad Care Systems", "--solution", "BadRecord", "--solution-version",
        "2.0", "--care-setting", "residential", "--db", db)
    for supplier, export in (("goodco", exports["good"]), ("badco", exports["bad"])):
        ran = cli("round", "run", "R1", "--supplier", supplier, "--export", export,
                  "--out", tmp_path / f"run-{supplier}", "--signing-key", keys["private"], "--db", db, "--store", store)
        assert re.search(r"reading the export: \d+ bytes in \d+\.\d s", ran.output)  # progress, in a log

    # A waiver for the failing SHOULD rule, and an expired one for the failing MUST rule: the latter must not count.
    cli("waiver", "grant", "DSCR-CP-001", "--supplier", "badco", "--justification", "care plans migrate in Q1",
        "--expires", str(TODAY + dt.timedelta(days=90)), "--db", db)
    cli("waiver", "grant", "NHSNO-CHK-001", "--supplier", "badco", "--justification", "lapsed",
        "--expires", str(TODAY - dt.timedelta(days=1)), "--db", db)

    good = cli("round", "decide", "R1", "--supplier", "goodco", "--signing-key", keys["private"],
               "--out", tmp_path / "cert-good", "--db", db)
    assert "PASS" in good.output
    bad = cli("round", "decide", "R1", "--supplier", "badco", "--signing-key", keys["private"],
              "--out", tmp_path / "cert-bad", "--db", db, code=1)
    assert "NHSNO-CHK-001" in bad.output

    bad_report = json.loads((tmp_path / "cert-bad" / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(bad_report, REPORT_SCHEMA)
    outcomes = {r["id"]: r["outcome"] for r in bad_report["rules"]}
    assert outcomes["DSCR-CP-001"] == "waived" and outcomes["NHSNO-CHK-001"] == "fail"
    assert [w["rule"] for w in bad_report["certification"]["waivers"]] == ["DSCR-CP-001"]
    assert bad_report["run"]["assessment"]["kind"] == "certification"
    assert "waived" in (tmp_path / "cert-bad" / "report.html").read_text(encoding="utf-8")

    out = tmp_path / "published"
    cli("list", "publish", "--out", out, "--signing-key", keys["private"], "--db", db)
    listed = json.loads((out / "assured-list.json").read_text(encoding="utf-8"))
    jsonschema.validate(listed, LIST_SCHEMA)
    assert [(e["supplier"], e["solution"], e["version"]) for e in listed["entries"]] == [
        ("goodco", "GoodRecord", "4.1")]
    entry = listed["entries"][0]
    assert entry["capabilities"] == ["care-planning", "emar"] and entry["suite"]["id"] == "asl-dscr-core"
    published = out / "reports" / f"{entry['report_sha256']}.json"
    assert published.read_bytes() == (tmp_path / "cert-good" / "report.json").read_bytes()
    assert "goodco" in (out / "assured-list.csv").read_text(encoding="utf-8")
    assert "GoodRecord" in (out / "index.html").read_text(encoding="utf-8")

    # Signed report: verifies, and one changed byte is named by section.
    cli("report", "verify", tmp_path / "cert-good", "--public-key", keys["public"])
    cli("report", "verify", tmp_path / "cert-good", "--public-key", keys["other_public"], code=1)
    report_path = tmp_path / "cert-good" / "report.json"
    original = report_path.read_text(encoding="utf-8")
    report_path.write_text(original.replace('"resources_read": ', '"resources_read": 1', 1), encoding="utf-8")
    res = cli("report", "verify", report_path, "--public-key", keys["public"], code=1)
    assert "section 'run' was changed after signing" in res.output

    # Evidence bundle: every file is hashed in a signed manifest; a changed byte names the file.
    bundle = next((store / "R1").glob("goodco-*.zip"))
    cli("report", "verify", bundle, "--public-key", keys["public"])
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "junit.xml":
                data = data.replace(b"failures=\"0\"", b"failures=\"1\"", 1)
            dst.writestr(info, data)
    res = cli("report", "verify", tampered, "--public-key", keys["public"], code=1)
    assert "junit.xml: SHA-256 differs from the manifest" in res.output

    # The audit log: intact, then an edited row is named.
    assert "audit log intact" in cli("audit", "verify", "--db", db).output
    _tamper_audit(db, 3)
    res = cli("audit", "verify", "--db", db, code=1)
    assert "audit entry 3" in res.output and "edited" in res.output
    res = cli("list", "publish", "--out", tmp_path / "again", "--signing-key", keys["private"], "--db", db, code=2)
    assert "audit log does not verify" in res.output


def test_submissions_and_decisions_are_append_only(tmp_path: Path, exports: dict[str, Path]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    _open_round(db)
    cli("supplier", "add", "goodco", "--name", "G", "--solution", "S", "--solution-version", "1", "--db", db)
    cli("round", "run", "R1", "--supplier", "goodco", "--export", exports["good"], "--out", tmp_path / "run",
        "--db", db, "--store", tmp_path / "store")
    cli("round", "run", "R1", "--supplier", "goodco", "--export", exports["good"], "--out", tmp_path / "run2",
        "--db", db, "--store", tmp_path / "store")  # a re-test is a new submission
    con = sqlite3.connect(tmp_path / "a.db")
    assert con.execute("SELECT count(*) FROM submission").fetchone() == (2,)
    for statement in ("UPDATE submission SET outcome = 'pass'", "DELETE FROM submission",
                      "UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(statement)
    # A row changed behind the registry's back (trigger dropped) no longer matches its audit entry.
    con.execute("DROP TRIGGER submission_no_update")
    con.execute("UPDATE submission SET evidence_sha256 = ? WHERE id = 1", ("0" * 64,))
    con.commit()
    con.close()
    res = cli("audit", "verify", "--db", db, code=1)
    assert "submission 1" in res.output


def test_waivers_scope_expiry_and_revocation(tmp_path: Path, exports: dict[str, Path], keys: dict[str, Path]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    store = tmp_path / "store"
    _open_round(db)
    for handle in ("badco", "otherco"):
        cli("supplier", "add", handle, "--name", handle, "--solution", "S", "--solution-version", "1", "--db", db)
        cli("round", "run", "R1", "--supplier", handle, "--export", exports["bad"], "--out", tmp_path / handle,
            "--db", db, "--store", store)
    # Both failing rules waived for badco only: it passes; otherco, with the same data, does not.
    for rule in ("NHSNO-CHK-001", "DSCR-CP-001"):
        cli("waiver", "grant", rule, "--supplier", "badco", "--round", "R1", "--justification", "fix scheduled",
            "--expires", str(TODAY + dt.timedelta(days=10)), "--db", db)
    cli("round", "decide", "R1", "--supplier", "badco", "--db", db)
    cli("round", "decide", "R1", "--supplier", "otherco", "--db", db, code=1)
    # Judged after the waivers expire, or once one is revoked, badco fails again.
    cli("round", "decide", "R1", "--supplier", "badco", "--on", str(TODAY + dt.timedelta(days=11)), "--db", db,
        code=1)
    cli("waiver", "revoke", "1", "--reason", "the fix shipped", "--db", db)
    res = cli("round", "decide", "R1", "--supplier", "badco", "--db", db, code=1)
    assert "NHSNO-CHK-001" in res.output
    listing = cli("waiver", "list", "--db", db).output
    assert "revoked" in listing and "in force" in listing
    # A waiver must name a rule that exists, and carry a justification.
    res = cli("waiver", "grant", "NHSNO-CHK-0001", "--justification", "x", "--expires", "2027-01-01", "--db", db,
              code=2)
    assert "no rule 'NHSNO-CHK-0001'" in res.output
    # An unsigned passing decision is recorded but never listed.
    out = tmp_path / "pub"
    cli("waiver", "grant", "NHSNO-CHK-001", "--supplier", "badco", "--justification", "again",
        "--expires", str(TODAY + dt.timedelta(days=10)), "--db", db)
    cli("round", "decide", "R1", "--supplier", "badco", "--db", db)
    res = cli("list", "publish", "--out", out, "--signing-key", keys["private"], "--db", db)
    assert json.loads((out / "assured-list.json").read_text(encoding="utf-8"))["entries"] == []
    assert "not signed" in res.output


def test_submission_must_match_the_round(tmp_path: Path, exports: dict[str, Path]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    _open_round(db)
    cli("supplier", "add", "goodco", "--name", "G", "--solution", "S", "--solution-version", "1", "--db", db)
    run_dir = tmp_path / "run"
    cli("run", "asl-dscr-core", "--export", exports["good"], "--out", run_dir, "--as-of", "2026-10-01")
    res = cli("round", "submit", "R1", run_dir, "--supplier", "goodco", "--db", db, "--store", tmp_path / "s", code=2)
    assert "judged as of 2026-10-01" in res.output and "--as-of 2026-11-01" in res.output
    res = cli("round", "submit", "R9", run_dir, "--supplier", "goodco", "--db", db, code=2)
    assert "no round 'R9' (known: R1)" in res.output
    (run_dir / "report.json").write_text("{broken", encoding="utf-8")
    res = cli("round", "submit", "R1", run_dir, "--supplier", "goodco", "--db", db, "--store", tmp_path / "s", code=2)
    assert "report.json: not a JSON report" in res.output
    cli("round", "close", "R1", "--db", db)
    cli("run", "asl-dscr-core", "--export", exports["good"], "--out", run_dir, "--as-of", AS_OF)
    res = cli("round", "submit", "R1", run_dir, "--supplier", "goodco", "--db", db, "--store", tmp_path / "s", code=2)
    assert "is closed" in res.output
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.zip"))


ROADMAP_PACK = """\
pack: test.roadmap
title: A roadmap item coming into force
version: 1.0.0
standards: [{id: ROADMAP, title: Test roadmap, version: '1'}]
rules:
  - id: ROADMAP-001
    title: Every person has a preferred contact method recorded
    level: MUST
    standard: ROADMAP
    clause: item 1
    applies_to: [export, api]
    effective_from: 2027-04-01
    resource: Patient
    check: {kind: fhirpath, expression: "extension.where(url = 'https://example.org/contact-method').exists()"}
    remediation: Record the person's preferred contact method.
"""


def _roadmap_round(tmp_path: Path) -> tuple[str, Path, Path]:
    """A registry with round R1 on a suite holding a rule that comes into force on 2027-04-01, and goodco."""
    db = f"sqlite:///{tmp_path / 'a.db'}"
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "roadmap.yaml").write_text(ROADMAP_PACK, encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text("suite: test-roadmap\ntitle: Roadmap\nversion: 1.0.0\n"
                     "packs: [{pack: identifiers.nhs-number}, {pack: test.roadmap}]\n"
                     "policy: {blocking_levels: [MUST]}\n", encoding="utf-8")
    _open_round(db, "R1", suite, "--packs-dir", packs)
    cli("supplier", "add", "goodco", "--name", "G", "--solution", "S", "--solution-version", "1", "--db", db)
    return db, packs, suite


def test_forecast_names_the_roadmap_rules_a_listed_solution_would_fail(
        tmp_path: Path, exports: dict[str, Path], keys: dict[str, Path]) -> None:
    db, packs, _ = _roadmap_round(tmp_path)
    cli("round", "run", "R1", "--supplier", "goodco", "--export", exports["good"], "--out", tmp_path / "run",
        "--packs-dir", packs, "--db", db, "--store", tmp_path / "store")
    run_report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(run_report, REPORT_SCHEMA)
    assert [r["id"] for r in run_report["forecast"]["rules"]] == ["ROADMAP-001"]
    assert "ROADMAP-001" not in {r["id"] for r in run_report["rules"]}  # not in force yet: not in the decision
    cli("round", "decide", "R1", "--supplier", "goodco", "--signing-key", keys["private"], "--db", db)

    before = cli("list", "forecast", "--as-of", "2027-03-31", "--public-key", keys["public"], "--packs-dir", packs,
                 "--db", db)
    assert "stays assured" in before.output
    after = cli("list", "forecast", "--as-of", "2027-04-01", "--public-key", keys["public"], "--packs-dir", packs,
                "--json", "--db", db, code=1)
    [forecast] = json.loads(after.output)
    assert forecast["would_fail"] and [r["rule"] for r in forecast["rules"]] == ["ROADMAP-001"]
    assert forecast["rules"][0]["outcome"] == "fail"


def test_forecast_counts_rules_never_evaluated_as_failing(
        tmp_path: Path, exports: dict[str, Path], keys: dict[str, Path]) -> None:
    db, packs, suite = _roadmap_round(tmp_path)
    run_dir = tmp_path / "run"  # a plain run, without --forecast-until: the roadmap rule is never evaluated
    cli("run", str(suite), "--export", exports["good"], "--out", run_dir, "--as-of", AS_OF, "--packs-dir", packs)
    cli("round", "submit", "R1", run_dir, "--supplier", "goodco", "--db", db, "--store", tmp_path / "store")
    cli("round", "decide", "R1", "--supplier", "goodco", "--signing-key", keys["private"], "--db", db)
    res = cli("list", "forecast", "--as-of", "2027-05-01", "--public-key", keys["public"], "--packs-dir", packs,
              "--json", "--db", db, code=1)
    assert json.loads(res.output)[0]["rules"][0] | {"title": ""} == {
        "rule": "ROADMAP-001", "level": "MUST", "effective_from": "2027-04-01", "outcome": "not evaluated",
        "title": ""}


def test_signing_keys_and_refusals(tmp_path: Path, keys: dict[str, Path], exports: dict[str, Path]) -> None:
    assert keys["private"].stat().st_mode & 0o777 == 0o600
    res = cli("keys", "generate", "--out", keys["private"].parent, "--name", "team", code=2)
    assert "refusing to overwrite" in res.output
    run_dir = tmp_path / "run"
    cli("run", "asl-dscr-core", "--export", exports["good"], "--out", run_dir, "--as-of", AS_OF)
    res = cli("report", "verify", run_dir, "--public-key", keys["public"], code=1)
    assert "not signed" in res.output
    assert "Self-assessment" in (run_dir / "report.html").read_text(encoding="utf-8")
    loose = tmp_path / "loose.key"
    loose.write_bytes(keys["private"].read_bytes())
    loose.chmod(0o644)
    res = cli("report", "sign", run_dir, "--signing-key", loose, code=2)
    assert "readable by other users" in res.output
    cli("report", "sign", run_dir, "--signing-key", keys["private"])
    cli("report", "verify", run_dir, "--public-key", keys["public"])
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Signed</strong> by care-assure assurance team" in html and "Self-assessment" in html
    signed = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(signed, REPORT_SCHEMA)
    # Re-signed by another key: the team key no longer verifies it.
    cli("report", "sign", run_dir, "--signing-key", keys["other"], "--signer", "impostor")
    res = cli("report", "verify", run_dir, "--public-key", keys["public"], code=1)
    assert "not with the given public key" in res.output


def test_forecast_on_the_real_roadmap_names_the_items_coming_into_force(
        tmp_path: Path, exports: dict[str, Path], keys: dict[str, Path]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    _open_round(db, "R1", "asl-dscr-roadmap")
    cli("supplier", "add", "goodco", "--name", "G", "--solution", "S", "--solution-version", "1", "--db", db)
    cli("round", "run", "R1", "--supplier", "goodco", "--export", exports["good"], "--out", tmp_path / "run",
        "--db", db, "--store", tmp_path / "store")
    cli("round", "decide", "R1", "--supplier", "goodco", "--signing-key", keys["private"], "--db", db)
    cli("list", "forecast", "--as-of", "2027-09-30", "--public-key", keys["public"], "--db", db)
    res = cli("list", "forecast", "--as-of", "2027-10-01", "--public-key", keys["public"], "--json", "--db", db,
              code=1)
    [entry] = json.loads(res.output)
    # the reference records no birth sex yet; its NHS numbers already carry a trace status; the API-only
    # transfer operation is not judged on an export
    assert [(r["rule"], r["outcome"]) for r in entry["rules"]] == [("RM-BIRTHSEX-001", "fail")]


def test_a_decision_that_relied_on_waivers_lapses_with_them(tmp_path: Path, exports: dict[str, Path],
                                                           keys: dict[str, Path]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    _open_round(db)
    cli("supplier", "add", "badco", "--name", "Bad", "--solution", "S", "--solution-version", "1", "--db", db)
    cli("round", "run", "R1", "--supplier", "badco", "--export", exports["bad"], "--out", tmp_path / "run",
        "--db", db, "--store", tmp_path / "store")
    until = TODAY + dt.timedelta(days=10)
    for rule in ("NHSNO-CHK-001", "DSCR-CP-001"):
        cli("waiver", "grant", rule, "--supplier", "badco", "--round", "R1", "--justification", "fix scheduled",
            "--expires", str(until), "--db", db)
    cli("round", "decide", "R1", "--supplier", "badco", "--signing-key", keys["private"],
        "--out", tmp_path / "cert", "--db", db)
    cert = json.loads((tmp_path / "cert" / "report.json").read_text(encoding="utf-8"))["certification"]
    assert sorted((w["rule"], w["level"]) for w in cert["waivers"]) == [("DSCR-CP-001", "SHOULD"),
                                                                       ("NHSNO-CHK-001", "MUST")]
    html = (tmp_path / "cert" / "report.html").read_text(encoding="utf-8")
    assert re.search(r'2 requirements were waived by the assurance team until a fix:.*?<a href="#rule-NHSNO-CHK-001">'
                     r'[^<]+</a> \(MUST\)', html, re.S)

    def listed(as_of: dt.date) -> tuple[list[dict[str, Any]], str]:
        out = tmp_path / f"pub-{as_of}"
        res = cli("list", "publish", "--out", out, "--signing-key", keys["private"], "--as-of", str(as_of), "--db", db)
        return json.loads((out / "assured-list.json").read_text(encoding="utf-8"))["entries"], res.output

    entries, _ = listed(TODAY)
    assert [e["supplier"] for e in entries] == ["badco"]
    assert entries[0]["expires"] == str(until)  # the earliest waiver expiry, not the decision's own
    forecast = cli("list", "forecast", "--as-of", str(until + dt.timedelta(days=1)), "--public-key", keys["public"],
                   "--db", db, code=1).output
    assert f"from {until}): expired" in forecast
    # after the waivers expire, the entry leaves the list and says why
    entries, output = listed(until + dt.timedelta(days=1))
    assert entries == []
    assert "expired on" in " ".join(output.split()) and "the decision relied on it" in " ".join(output.split())
    # a revoked waiver ends it at once
    cli("waiver", "revoke", "1", "--reason", "the fix shipped", "--db", db)
    entries, output = listed(TODAY)
    assert entries == [] and "was revoked on" in " ".join(output.split())
