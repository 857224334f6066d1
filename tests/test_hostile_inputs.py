"""Hostile inputs never crash, hang or blow up memory: each is a finding with its place, the good data read.

The corpus is generated here (nothing binary is committed). Each case runs the real command in a
child process, whose wall time and peak memory are measured.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.helpers import rule_yaml

GOOD = {"resourceType": "Patient", "id": "good", "gender": "female",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>'}}
JUNIT_SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parents[1] / "reports" / "junit.xsd")))
MAX_SECONDS = 60.0
MAX_RSS_MB = 600.0


def _run(tmp_path: Path, *paths: Path, suite: str = "fhir-r4-base", extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The command in a child process: exit code, output, report, seconds and peak RSS (MiB)."""
    out = tmp_path / "out"
    args = [sys.executable, "-m", "harness", "run", suite, "--out", str(out), "--format", "json,junit,html",
            *[a for p in paths for a in ("--export", str(p))], *extra]
    start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    peak = [0.0]
    watcher = threading.Thread(target=_watch_peak, args=(proc.pid, peak), daemon=True)
    watcher.start()
    with proc.stdout:
        stdout = proc.stdout.read()
    watcher.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    seconds = time.monotonic() - start
    report = json.loads((out / "report.json").read_text(encoding="utf-8")) if (out / "report.json").exists() else {}
    return {"code": proc.returncode, "output": stdout.decode("utf-8", "replace"),
            "report": report, "seconds": seconds, "rss_mb": peak[0] or usage.ru_maxrss / 1024, "out": out}


def _watch_peak(pid: int, peak: list[float]) -> None:
    """The child's own peak resident size (VmHWM, MiB) until it exits. ru_maxrss would include the
    resident size of this pytest worker at the fork, which other tests' caches inflate."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text(encoding="ascii")
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        if "State:\tZ" in text:
            return
        time.sleep(0.005)


def _read_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["rule"] == "HARNESS-READ-001"]


def _bounded(result: dict[str, Any]) -> None:
    assert "Traceback" not in result["output"], result["output"][-2000:]
    assert result["seconds"] < MAX_SECONDS, f"took {result['seconds']:.1f} s"
    assert result["rss_mb"] < MAX_RSS_MB, f"peak memory {result['rss_mb']:.0f} MiB"


def _good_file(folder: Path) -> Path:
    path = folder / "good.ndjson"
    path.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    return path


def test_a_bundle_entry_nested_100000_levels_is_refused_and_the_next_entry_read(tmp_path: Path) -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    path = tmp_path / "deep.json"
    path.write_text('{"resourceType":"Bundle","type":"collection","entry":[{"resource":' + deep + "},"
                    + json.dumps({"resource": GOOD}) + "]}", encoding="utf-8")
    result = _run(tmp_path, path)
    _bounded(result)
    found = _read_findings(result["report"])
    assert [(f["location"], f["message"]) for f in found] == [
        ("deep.json#/entry/0", "Bundle entry nests deeper than 128 levels")]
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


def test_a_single_document_nested_100000_levels_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    result = _run(tmp_path, path, _good_file(tmp_path))
    _bounded(result)
    assert [f["location"] for f in _read_findings(result["report"])] == ["deep.json"]
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


def test_bundle_entries_that_are_not_objects_are_findings(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": ["text", 12, [1, 2], {"resource": GOOD}, None]}), encoding="utf-8")
    result = _run(tmp_path, path)
    _bounded(result)
    assert [(f["location"], f["message"]) for f in _read_findings(result["report"])] == [
        ("bundle.json#/entry/0", "Bundle entry is a string, not an object"),
        ("bundle.json#/entry/1", "Bundle entry is a number, not an object"),
        ("bundle.json#/entry/2", "Bundle entry is an array, not an object"),
        ("bundle.json#/entry/4", "Bundle entry is a null, not an object"),
    ]
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _headers(data: bytes, name: str) -> tuple[int, int]:
    """Offsets of a member's local header and of its central-directory entry."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        local = z.getinfo(name).header_offset
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        length = int.from_bytes(data[central + 28:central + 30], "little")
        if data[central + 46:central + 46 + length] == name.encode():
            return local, central
        central = data.find(b"PK\x01\x02", central + 4)
    raise AssertionError(name)


def test_zip_members_that_inflate_too_far_are_refused_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    _zip(path, {"a-bomb.ndjson": b"\n" * (300 * 1024 * 1024), "b-good.ndjson": (json.dumps(GOOD) + "\n").encode()})
    assert path.stat().st_size < 2 * 1024 * 1024
    result = _run(tmp_path, path)
    _bounded(result)
    found = _read_findings(result["report"])
    assert [f["location"] for f in found] == ["bomb.zip!/a-bomb.ndjson"]
    assert "inflates more than 200 times its compressed size" in found[0]["message"]
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


def test_encrypted_corrupt_and_unsupported_zip_members_are_findings(tmp_path: Path) -> None:
    good = (json.dumps(GOOD) + "\n").encode()
    path = tmp_path / "odd.zip"
    _zip(path, {"enc.ndjson": good, "good.ndjson": good, "odd.ndjson": good, "z-corrupt.ndjson": good * 50})
    data = bytearray(path.read_bytes())
    local, central = _headers(bytes(data), "enc.ndjson")
    data[local + 6] |= 0x1  # the "encrypted" flag, in both headers
    data[central + 8] |= 0x1
    local, central = _headers(bytes(data), "odd.ndjson")
    for offset in (local + 8, central + 10):
        data[offset:offset + 2] = (97).to_bytes(2, "little")  # a compression method nobody implements
    local, _ = _headers(bytes(data), "z-corrupt.ndjson")
    start = local + 30 + len("z-corrupt.ndjson")
    data[start + 5:start + 15] = b"\xff" * 10
    path.write_bytes(bytes(data))
    result = _run(tmp_path, path)
    _bounded(result)
    found = {f["location"]: f["message"] for f in _read_findings(result["report"])}
    assert found["odd.zip!/enc.ndjson"] == "zip member is encrypted: it cannot be read"
    assert "compression" in found["odd.zip!/odd.ndjson"]
    assert "odd.zip!/z-corrupt.ndjson" in found
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


@pytest.mark.parametrize("value", ["abc", "Infinity", "1e999999999", "NaN"])
def test_xml_decimals_that_are_not_decimals_are_findings(tmp_path: Path, value: str) -> None:
    path = tmp_path / "obs.xml"
    path.write_text(f"""<?xml version="1.0"?>
<Observation xmlns="http://hl7.org/fhir">
  <status value="final"/>
  <code><text value="x"/></code>
  <valueQuantity><value value="{value}"/></valueQuantity>
</Observation>""", encoding="utf-8")
    result = _run(tmp_path, path, _good_file(tmp_path))
    _bounded(result)
    found = _read_findings(result["report"])
    assert len(found) == 1 and found[0]["location"].startswith("obs.xml:")
    assert "is not a valid decimal" in found[0]["message"] or "outside the range" in found[0]["message"]
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


def _pack(folder: Path, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "hostile.yaml").write_text(body, encoding="utf-8")
    return folder


def test_a_yaml_alias_bomb_in_a_pack_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    packs = _pack(tmp_path / "packs", "\n".join(lines) + "\n")
    result = _run(tmp_path, _good_file(tmp_path), extra=("--packs-dir", str(packs)))
    _bounded(result)
    assert result["code"] == 2
    assert "hostile.yaml" in result["output"] and "expands to more than 1,000,000 values" in result["output"]


def test_a_recursive_yaml_alias_is_refused(tmp_path: Path) -> None:
    packs = _pack(tmp_path / "packs", "loop: &loop [*loop]\n")
    result = _run(tmp_path, _good_file(tmp_path), extra=("--packs-dir", str(packs)))
    _bounded(result)
    assert result["code"] == 2
    assert "hostile.yaml:1" in result["output"] and "recursive alias" in result["output"]


def _pattern_pack(regex: str) -> str:
    rule = rule_yaml("T-REGEX-001", select="name.family", check=f"{{kind: pattern, regex: '{regex}'}}")
    return ("pack: test.hostile\ntitle: Hostile patterns\nversion: 1.0.0\n"
            "standards: [{id: T, title: Test, version: '1'}]\nrules:\n" + rule)
SUITE = """suite: hostile
title: Hostile
version: 0.1.0
description: d
assessment: self
packs: [{pack: test.hostile}]
policy: {blocking_levels: [MUST], warning_levels: [SHOULD]}
"""


def test_a_catastrophic_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    packs = _pack(tmp_path / "packs", _pattern_pack("(a+)+b"))
    (tmp_path / "suite.yaml").write_text(SUITE, encoding="utf-8")
    patient = {**GOOD, "name": [{"family": "a" * 100_000}]}
    export = tmp_path / "long.ndjson"
    export.write_text(json.dumps(patient) + "\n", encoding="utf-8")
    result = _run(tmp_path, export, suite=str(tmp_path / "suite.yaml"), extra=("--packs-dir", str(packs)))
    _bounded(result)
    assert result["code"] == 1
    assert result["report"]["rules"][1]["outcome"] == "fail"


def test_a_pattern_that_needs_backtracking_is_refused_at_lint(tmp_path: Path) -> None:
    packs = _pack(tmp_path / "packs", _pattern_pack("(a)\\1"))
    proc = subprocess.run([sys.executable, "-m", "harness", "packs", "lint", str(packs)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "hostile.yaml" in proc.stderr + proc.stdout and "needs a backtracking engine" in proc.stderr + proc.stdout


def test_control_characters_leave_junit_and_html_valid(tmp_path: Path) -> None:
    patient = {**GOOD, "ni\u0001ck\u001fname": "x", "name": [{"family": "Ev\u0002ans"}]}
    export = tmp_path / "ctrl.ndjson"
    export.write_text(json.dumps(patient) + "\n", encoding="utf-8")
    result = _run(tmp_path, export)
    _bounded(result)
    assert result["code"] == 1
    junit = etree.fromstring((result["out"] / "junit.xml").read_bytes())  # raises on invalid XML
    JUNIT_SCHEMA.assertValid(junit)
    assert "\\x01" in etree.tostring(junit, encoding="unicode")
    html = (result["out"] / "report.html").read_text(encoding="utf-8")
    assert "\u0001" not in html and "\\x01" in html


def test_a_huge_number_in_a_bundle_loses_only_its_entry(tmp_path: Path) -> None:
    entries = [{"resource": {**GOOD, "id": "first"}},
               {"resource": {"resourceType": "Observation", "id": "big", "status": "final", "code": {"text": "x"},
                             "valueQuantity": {"value": 1}}},
               {"resource": {**GOOD, "id": "last"}}]
    text = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    path = tmp_path / "numbers.json"
    path.write_text(text.replace('"value": 1}', '"value": 1e999999}'), encoding="utf-8")
    result = _run(tmp_path, path)
    _bounded(result)
    assert [(f["location"], f["message"]) for f in _read_findings(result["report"])] == [
        ("numbers.json#/entry/1", "a number in this entry is too large for FHIR (beyond 1e308)")]
    assert result["report"]["run"]["resource_counts"] == {"Patient": 2}
    assert result["code"] == 1


def test_a_json_syntax_error_names_the_entry_and_quotes_no_data(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
                    '{"resourceType":"Patient","name":[{"family":"Smith-Jones" "given"}]}}]}', encoding="utf-8")
    result = _run(tmp_path, path)
    _bounded(result)
    found = _read_findings(result["report"])
    assert found[0]["location"] == "broken.json#/entry/0"
    assert "Smith-Jones" not in json.dumps(result["report"])
    assert result["code"] == 3  # nothing readable


def test_an_overlong_ndjson_line_is_refused_and_the_next_line_read(tmp_path: Path) -> None:
    path = tmp_path / "long.ndjson"
    with path.open("wb") as f:
        f.write(b'{"resourceType":"Patient","id":"x","text":{"div":"' + b"a" * (70 * 1024 * 1024) + b'"}}\n')
        f.write((json.dumps(GOOD) + "\n").encode())
    result = _run(tmp_path, path)
    _bounded(result)
    assert [(f["location"], f["message"]) for f in _read_findings(result["report"])] == [
        ("long.ndjson:1", "line is longer than 67,108,864 bytes: not read")]
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


def test_an_overlong_string_in_a_bundle_loses_only_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "strings.json"
    path.write_text('{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Binary",'
                    '"contentType":"text/plain","data":"' + "A" * (17 * 1024 * 1024) + '"}},'
                    + json.dumps({"resource": GOOD}) + "]}", encoding="utf-8")
    result = _run(tmp_path, path)
    _bounded(result)
    assert [(f["location"], f["message"]) for f in _read_findings(result["report"])] == [
        ("strings.json#/entry/0", "a string in this entry is longer than 16,777,216 characters")]
    assert result["report"]["run"]["resources_read"] == 1
    assert result["code"] == 1


def test_xml_entities_in_a_package_are_never_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    package = tmp_path / "package"
    package.mkdir()
    (package / "vs.xml").write_text(f"""<?xml version="1.0"?>
<!DOCTYPE ValueSet [<!ENTITY secret SYSTEM "file://{secret}">]>
<ValueSet xmlns="http://hl7.org/fhir"><url value="http://example.org/vs"/><name value="&secret;"/></ValueSet>
""", encoding="utf-8")
    result = _run(tmp_path, _good_file(tmp_path), extra=("--package-dir", str(package)))
    _bounded(result)
    assert result["code"] == 2
    assert "vs.xml" in result["output"] and "TOP-SECRET-VALUE" not in result["output"]


def test_symbolic_links_out_of_an_export_folder_are_findings_and_never_followed(tmp_path: Path) -> None:
    export, outside = tmp_path / "export", tmp_path / "outside"
    export.mkdir()
    (outside / "sub").mkdir(parents=True)
    secret = {**GOOD, "id": "elsewhere", "name": [{"family": "Outsidefolder"}]}
    (outside / "other.ndjson").write_text(json.dumps(secret) + "\n", encoding="utf-8")
    _good_file(export)
    (export / "inside.ndjson").symlink_to("good.ndjson")  # a link within the folder is read
    (export / "out.ndjson").symlink_to(outside / "other.ndjson")
    (export / "outdir").symlink_to(outside / "sub")
    (export / "nothing.ndjson").symlink_to(tmp_path / "missing.ndjson")
    result = _run(tmp_path, export)
    _bounded(result)
    assert result["code"] == 3 or result["report"]["decision"]["outcome"] != "pass"
    where = {f["file"]: f["message"] for f in _read_findings(result["report"])}
    assert "symbolic link out of the export folder" in where["export/out.ndjson"]
    assert "symbolic link out of the export folder" in where["export/outdir"]
    assert "symbolic link to nothing" in where["export/nothing.ndjson"]
    assert result["report"]["run"]["resources_read"] == 2  # good.ndjson and the link to it
    for path in result["out"].rglob("*"):
        if path.is_file():
            assert "Outsidefolder" not in path.read_text(encoding="utf-8", errors="replace"), path
