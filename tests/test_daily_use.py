"""A supplier's developer, many times a day: what is in force when, re-rendering, diffs, messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()

SCHEDULE_PACK = """\
pack: test.schedule
title: Schedule
version: 1.0.0
standards: [{id: T, title: Test standard, version: '2'}]
rules:
"""


def cli(*args: str | Path, code: int | None = 0, columns: int = 200, env: dict[str, str] | None = None) -> Any:
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns), "NO_COLOR": "1", **(env or {})})
    if code is not None:
        assert res.exit_code == code, res.output
    return res


def _rule(rule_id: str, since: str, until: str | None = None, level: str = "MUST") -> str:
    lines = [f"  - id: {rule_id}", f"    title: rule {rule_id}", f"    level: {level}", "    standard: T",
             f'    clause: "clause of {rule_id}"', "    applies_to: [export]", f"    effective_from: {since}",
             *([f"    effective_until: {until}"] if until else []), "    resource: Patient",
             "    check: {kind: fhirpath, expression: gender.exists()}", "    remediation: fix it"]
    return "\n".join(lines) + "\n"


def _schedule_suite(tmp_path: Path) -> tuple[Path, Path]:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "schedule.yaml").write_text(
        SCHEDULE_PACK + _rule("T-NOW-001", "2024-01-01") + _rule("T-LATER-001", "2027-10-01", level="SHOULD")
        + _rule("T-GONE-001", "2020-01-01", "2025-06-30"), encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text("suite: schedule\ntitle: Schedule test\nversion: 1.0.0\npacks: [{pack: test.schedule}]\n"
                     "policy: {blocking_levels: [MUST]}\n", encoding="utf-8")
    return packs, suite


def test_suites_show_lists_what_is_in_force_coming_and_retired(tmp_path: Path) -> None:
    packs, suite = _schedule_suite(tmp_path)
    res = cli("suites", "show", suite, "--as-of", "2026-12-01", "--packs-dir", packs, "--format", "json")
    data = json.loads(res.output)
    assert [r["id"] for r in data["in_force"]] == ["T-NOW-001"]
    assert [(r["id"], r["since"], r["level"]) for r in data["coming"]] == [("T-LATER-001", "2027-10-01", "SHOULD")]
    assert [(r["id"], r["until"]) for r in data["retired"]] == [("T-GONE-001", "2025-06-30")]
    assert data["in_force"][0]["clause"] == "clause of T-NOW-001" and data["in_force"][0]["standard"] == "T"
    # On the day the later rule comes in, it is in force.
    later = json.loads(cli("suites", "show", suite, "--as-of", "2027-10-01", "--packs-dir", packs,
                           "--format", "json").output)
    assert {r["id"] for r in later["in_force"]} == {"T-NOW-001", "T-LATER-001"} and later["coming"] == []
    # Text, at 80 columns: a list, no line longer than the terminal.
    text = cli("suites", "show", suite, "--as-of", "2026-12-01", "--packs-dir", packs, columns=80).output
    assert "in force (1)" in text and "coming (1)" in text and "retired (1)" in text
    assert "from 2027-10-01 · Test standard 2: clause of T-LATER-001" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_suites_show_refuses_a_bad_format_or_date(tmp_path: Path) -> None:
    assert "--format must be text or json" in cli("suites", "show", "asl-dscr-core", "--format", "xml", code=2).output
    assert "not a date" in cli("suites", "show", "asl-dscr-core", "--as-of", "tomorrow", code=2).output
    assert "did you mean 'asl-dscr-core'" in cli("suites", "show", "asl-dscr-cor", code=2).output


def test_report_render_remakes_renderings_and_keeps_the_signature(tmp_path: Path) -> None:
    from tests.helpers import write_ndjson

    export = write_ndjson(tmp_path / "export" / "data.ndjson", [
        {"resourceType": "Patient", "id": "p1", "gender": "female"}])
    run = tmp_path / "run"
    cli("run", "fhir-r4-base", "--export", export, "--out", run, "--format", "json,html,junit,sarif,csv", "-q")
    cli("keys", "generate", "--out", tmp_path / "keys", "--name", "team")
    cli("report", "sign", run, "--signing-key", tmp_path / "keys" / "team.key")
    originals = {n: (run / n).read_bytes() for n in ("report.html", "junit.xml", "report.sarif", "requirements.csv")}
    report_bytes = (run / "report.json").read_bytes()
    for name in originals:
        (run / name).unlink()
    res = cli("report", "render", run, "--format", "html,junit,sarif,csv")
    assert res.output.count("wrote ") == 4
    assert {n: (run / n).read_bytes() for n in originals} == originals  # the same bytes as the run wrote
    assert (run / "report.json").read_bytes() == report_bytes
    cli("report", "verify", run, "--public-key", tmp_path / "keys" / "team.pub")
    other = tmp_path / "elsewhere"
    cli("report", "render", run / "report.json", "--format", "junit", "--out", other)
    assert (other / "junit.xml").read_bytes() == originals["junit.xml"]
    assert "unknown report format" in cli("report", "render", run, "--format", "pdf", code=2).output
    assert "cannot read a report" in cli("report", "render", tmp_path / "nowhere", code=2).output


def test_report_diff_keys_findings_on_what_they_are_about_not_the_folder(tmp_path: Path) -> None:
    import shutil

    from tests.helpers import write_ndjson

    resources = [{"resourceType": "Patient", "id": f"p{i}", "gender": "boy"} for i in range(5)]
    first = write_ndjson(tmp_path / "monday-export" / "patients.ndjson", resources)
    second = tmp_path / "tuesday" / "renamed.ndjson"
    second.parent.mkdir()
    shutil.copy(first, second)
    cli("run", "fhir-r4-base", "--export", first.parent, "--out", tmp_path / "r1", "-q", code=1)
    cli("run", "fhir-r4-base", "--export", second.parent, "--out", tmp_path / "r2", "-q", code=1)
    same = json.loads(cli("report", "diff", tmp_path / "r1", tmp_path / "r2", "--json").output)
    assert same["findings_added"] == [] and same["findings_removed"] == []
    # One resident fixed, one newly broken: exactly those two findings move.
    resources[0]["gender"] = "female"
    resources.append({"resourceType": "Patient", "id": "p9", "gender": "girl"})
    write_ndjson(tmp_path / "wednesday" / "patients.ndjson", resources)
    cli("run", "fhir-r4-base", "--export", tmp_path / "wednesday", "--out", tmp_path / "r3", "-q", code=1)
    moved = json.loads(cli("report", "diff", tmp_path / "r1", tmp_path / "r3", "--json").output)
    assert {f["resource_id"] for f in moved["findings_added"]} == {"p9"}  # its binding, and its narrative
    assert "FHIR-BIND-001" in {f["rule"] for f in moved["findings_added"]}
    assert [(f["rule"], f["resource_id"]) for f in moved["findings_removed"]] == [("FHIR-BIND-001", "p0")]


def _patients_and(tmp_path: Path, *extra: dict[str, Any]) -> Path:
    from tests.helpers import write_ndjson

    return write_ndjson(tmp_path / "export" / "data.ndjson", [
        {"resourceType": "Patient", "id": "p1", "gender": "female"}, *extra])


def test_a_rule_whose_where_matched_nothing_says_so_and_how_many_were_read(tmp_path: Path) -> None:
    export = _patients_and(tmp_path, {"resourceType": "Organization", "id": "o1", "name": "Elm House",
                                      "type": [{"coding": [{"code": "other"}]}]})
    cli("run", "asl-dscr-core", "--export", export, "--out", tmp_path / "out", "-q", code=None)
    rules = {r["id"]: r for r in json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["rules"]}
    assert rules["ODS-REF-001"]["message"] == ("no Organization matching `type.coding.where(code = 'prov')` "
                                               "(1 Organization read): the rule needs data to pass")
    assert rules["ODS-FMT-001"]["message"] == "no Organization in the target" or rules["ODS-FMT-001"]["outcome"] \
        != "not-applicable"


def test_the_attestation_hint_is_given_once(tmp_path: Path) -> None:
    export = _patients_and(tmp_path)
    res = cli("run", "asl-dscr-core", "--export", export, "--out", tmp_path / "out", code=None, columns=80,
              env={"CARE_ASSURE_ATTESTATIONS": ""})
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    manual = [r for r in report["rules"] if r["outcome"] == "manual"]
    assert len(manual) >= 3
    cso = next(r for r in manual if r["id"] == "DSCR-ATT-CSO-001")
    assert cso["message"] == ("awaiting an attestation: Has a named, registered clinician been appointed "
                              "Clinical Safety Officer, and is there a current DCB0129 clinical safety case "
                              "report and hazard log for this release?")
    assert "--attestations" not in json.dumps(report)
    assert res.output.count("--attestations FILE") == 1
    assert f"{len(manual)} rule(s) await an attestation: answer them in a YAML file and give it with " \
           "--attestations FILE" in " ".join(res.output.split())


def test_messages_use_json_words_not_python_class_names(tmp_path: Path) -> None:
    import socket

    bundle = tmp_path / "export" / "bundle.json"
    bundle.parent.mkdir()
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": [1, 2]}, {"resource": {"resourceType": "Patient", "id": "p", "gender": 3}}]}), encoding="utf-8")
    cli("run", "fhir-r4-base", "--export", bundle.parent, "--out", tmp_path / "out", "-q", code=None)
    text = (tmp_path / "out" / "report.json").read_text(encoding="utf-8")
    assert "found an array" in text
    for name in ("list", "dict", "int", "str", "NoneType", "Error:"):
        assert f"found {name}" not in text and f" {name}:" not in text
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = cli("run", "asl-dscr-core", "--api", f"http://127.0.0.1:{port}", "--allow-insecure-local",
              "--out", tmp_path / "api", "-q", code=3)
    report = json.loads((tmp_path / "api" / "report.json").read_text(encoding="utf-8"))
    messages = " ".join(f["message"] for f in report["findings"]) + res.output
    assert "connection failed: Connection refused" in messages
    assert "ConnectionError" not in messages and "object at 0x" not in messages


def _commands() -> list[tuple[str, Any]]:
    import typer.main

    def walk(cmd: Any, path: list[str]) -> Any:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd
    return list(walk(typer.main.get_command(app), []))


def test_every_command_and_option_says_what_it_does() -> None:
    missing = [f"{name} {p.name}" for name, cmd in _commands() for p in cmd.params
               if p.name != "help" and not getattr(p, "help", None)]
    missing += [f"{name} (command)" for name, cmd in _commands() if not (cmd.help or "").strip()]
    assert missing == []
    for name in ("run", "round run", "replay"):  # the commands that reach a supplier: one set of options
        cmd = dict(_commands())[name]
        options = {o for p in cmd.params for o in p.opts}
        assert {"--token-env", "--oauth-token-url", "--client-id", "--client-secret-env", "--scope", "--cert",
                "--key", "--ca", "--connect-timeout", "--read-timeout", "--allow-insecure-local"} <= options, name
    run_help = cli("run", "--help", columns=120).output
    for panel in ("Target", "Authentication", "Output"):
        assert panel in run_help
    assert "Exit codes: 0 pass, 1 fail, 2 usage" in " ".join(run_help.split())
    assert "Registry" in cli("round", "run", "--help", columns=120).output


def test_reference_serve_help_lists_every_defect_switch() -> None:
    from fixtures.defect_names import API_DEFECTS, EXPORT_DEFECTS
    from fixtures.export_generator import DEFECTS
    from fixtures.reference_server import API_DEFECTS as DEFINED_API

    assert set(EXPORT_DEFECTS) == set(DEFECTS) and set(API_DEFECTS) == set(DEFINED_API)
    text = " ".join(cli("reference", "serve", "--help", columns=200).output.split())
    for name in (*EXPORT_DEFECTS, *API_DEFECTS):
        assert name in text, name


def test_numbers_out_of_range_are_usage_errors_everywhere(tmp_path: Path) -> None:
    export = _patients_and(tmp_path)
    for option, value in (("--connect-timeout", "0"), ("--read-timeout", "-1"), ("--page-limit", "0")):
        for command in (["run", "asl-dscr-core", "--export", str(export)],
                        ["round", "run", "R1", "--supplier", "x", "--export", str(export)]):
            res = cli(*command, option, value, "--out", tmp_path / "out", code=2)
            assert "Traceback" not in res.output and option in res.output
    from harness.errors import ConfigurationError
    from harness.targets.options import TargetOptions

    bad = TargetOptions(api="https://x.example", read_timeout=0, page_limit=0, evidence="all", key="k.pem")
    assert [str(p) for p in bad.problems()] == [
        "--evidence must be 'redacted' or 'full', not 'all'",
        "--read-timeout must be between 0.1 and 3600 seconds, not 0",
        "--page-limit must be between 1 and 100000 pages, not 0",
        "--key is the private key of a client certificate: give --cert too",
    ]
    try:
        TargetOptions(export=(export,), api="https://x.example").build()
    except ConfigurationError as exc:
        assert "give either --export or --api" in str(exc)
    else:
        raise AssertionError("two targets were accepted")


SNAPSHOT = Path(__file__).parent / "data" / "run-80-columns.txt"


def test_run_output_at_80_columns_matches_the_snapshot(tmp_path_factory: Any) -> None:
    """The terminal output a developer reads, at 80 columns (regenerate: CARE_ASSURE_UPDATE_SNAPSHOTS=1)."""
    import os

    from tests.helpers import reference_export

    export = reference_export(tmp_path_factory, 6, 3, ("nhs-bad-checksum", "resident-without-care-plan"))
    out = export.parent / "out"
    res = cli("run", "asl-dscr-core", "--export", export, "--out", out, "--as-of", "2026-11-01", code=1, columns=80)
    text = res.output.replace(str(out), "OUT")
    assert max(len(line) for line in text.splitlines()) <= 80, "a line is wider than the terminal"
    assert "\x1b[" not in text  # NO_COLOR and a non-terminal: no escape codes
    if os.environ.get("CARE_ASSURE_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", [("suites", "list"), ("packs", "list"), ("suites", "diff", "asl-dscr-core",
                                                                              "asl-dscr-roadmap")])
def test_tables_become_lists_at_80_columns(command: tuple[str, ...]) -> None:
    narrow = cli(*command, columns=80).output
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "┃" not in narrow and "│" not in narrow  # a list, not a table squeezed word by word
    wide = cli(*command, columns=160).output
    assert "┃" in wide or "│" in wide or "0 added" in wide
