"""Tester mistakes and a target that cannot be evaluated: exit 3 "could not evaluate", never a supplier FAIL.

Exit codes: 0 pass, 1 the supplier failed, 2 usage or configuration error, 3 could not evaluate.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fixtures.reference_server import ReferenceApi, ReferenceServer
from harness.cli import app

runner = CliRunner()
TOKEN = "reference-supplier-token"


class SlowSearches:
    """The reference API, with every search answered only after ``delay`` seconds (metadata at once)."""

    def __init__(self, app: ReferenceApi, delay: float) -> None:
        self.app, self.delay = app, delay

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "metadata" not in environ.get("PATH_INFO", ""):
            time.sleep(self.delay)
        return self.app(environ, start_response)


@pytest.fixture
def slow_server() -> Iterator[ReferenceServer]:
    with ReferenceServer(SlowSearches(ReferenceApi(residents=4), delay=4.0)) as s:  # type: ignore[arg-type]
        yield s


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(ReferenceApi(residents=4)) as s:
        yield s


def _api_run(url: str, out: Path, *extra: str, token: str = TOKEN) -> Any:
    return runner.invoke(app, ["run", "asl-dscr-core", "--api", url, "--token-env", "CA_TEST_TOKEN",
                               "--allow-insecure-local", "--out", str(out), "--format", "json", *extra],
                         env={"CA_TEST_TOKEN": token})


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return report


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_a_wrong_token_is_could_not_evaluate_with_the_status(server: ReferenceServer, tmp_path: Path) -> None:
    res = _api_run(server.url, tmp_path, token="not-the-token")
    assert res.exit_code == 3, res.output
    assert "COULD NOT EVALUATE" in res.output and "authentication refused (HTTP 401)" in _one_line(res.output)
    assert "Traceback" not in res.output
    report = _report(tmp_path)
    assert report["decision"]["outcome"] == "could-not-evaluate"
    assert report["run"]["could_not_evaluate"].startswith("authentication refused (HTTP 401)")
    # rules that needed the data say so; none claims the supplier has "no Patient"
    messages = [r["message"] or "" for r in report["rules"]]
    assert not any("no Patient in the target" in m for m in messages)


def test_an_unreachable_host_is_could_not_evaluate(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = _api_run(f"http://127.0.0.1:{port}", tmp_path, "--connect-timeout", "1")
    assert res.exit_code == 3, res.output
    assert "target unreachable" in _one_line(res.output)
    assert _report(tmp_path)["decision"]["outcome"] == "could-not-evaluate"


@pytest.mark.parametrize("option", [["--read-timeout", "0"], ["--read-timeout", "-1"], ["--connect-timeout", "0"],
                                    ["--page-limit", "0"], ["--page-limit", "-5"], ["--deadline", "0"],
                                    ["--examples", "0"], ["--seed", "-1"]])
def test_numeric_options_are_validated(option: list[str], tmp_path: Path) -> None:
    res = _api_run("http://127.0.0.1:9", tmp_path, *option)
    assert res.exit_code == 2, res.output
    assert option[0] in res.output and "Traceback" not in res.output
    assert not (tmp_path / "report.json").exists()


def test_an_unwritable_out_is_refused_before_the_run(server: ReferenceServer, tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.write_text("a file", encoding="utf-8")
    start = time.monotonic()
    res = _api_run(server.url, occupied)
    assert res.exit_code == 2, res.output
    assert "is a file, not a directory" in _one_line(res.output)
    assert time.monotonic() - start < 5


def test_nothing_readable_is_could_not_evaluate(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_text("this is not json\n{also not\n", encoding="utf-8")
    res = runner.invoke(app, ["run", "asl-dscr-core", "--export", str(export), "--out", str(tmp_path / "out"),
                              "--format", "json"])
    assert res.exit_code == 3, res.output
    assert "nothing in the target could be read" in _one_line(res.output)


def test_a_slow_server_meets_the_deadline_with_a_partial_report(slow_server: ReferenceServer, tmp_path: Path) -> None:
    start = time.monotonic()
    res = _api_run(slow_server.url, tmp_path, "--deadline", "2")
    took = time.monotonic() - start
    assert res.exit_code == 3, res.output
    assert took < 20, f"the run took {took:.1f} s against a 2 s deadline"
    report = _report(tmp_path)
    assert report["decision"]["outcome"] == "could-not-evaluate"
    assert report["run"]["could_not_evaluate"] == "deadline of 2 s reached"
    data_rules = [r for r in report["rules"] if r["id"].startswith(("NHSNO-", "FHIR-STRUCT"))]
    assert data_rules and all(r["outcome"] == "error" and r["message"] == "not evaluated: deadline of 2 s reached"
                              for r in data_rules)


def test_sigterm_mid_run_writes_a_partial_report(slow_server: ReferenceServer, tmp_path: Path) -> None:
    env = {**os.environ, "CA_TEST_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "asl-dscr-core", "--api", slow_server.url,
                             "--token-env", "CA_TEST_TOKEN", "--allow-insecure-local", "--out", str(tmp_path),
                             "--format", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    time.sleep(3)  # started, metadata read, waiting on the first (slow) search
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 3, output
    assert "Traceback" not in output
    report = _report(tmp_path)
    assert report["run"]["could_not_evaluate"] == "interrupted by SIGTERM"
    assert report["decision"]["outcome"] == "could-not-evaluate"
