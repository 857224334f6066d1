"""A hostile FHIR server: pages that repeat resources, ignore _count or fall short of their total, errors
that carry stack traces and patient data. Never a PASS, and nothing written carries its patients or token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fixtures.reference_server import TOKEN, ReferenceApi, ReferenceServer
from harness.cli import app as cli_app
from harness.results import Outcome
from tests.helpers import personal_values
from tests.test_api import run_api


class Misbehaving:
    """The reference API with its Patient searches rewritten to break the paging rules in one way."""

    def __init__(self, app: ReferenceApi, mode: str) -> None:
        self.app, self.mode = app, mode

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        patients = environ.get("PATH_INFO", "").endswith("Patient")
        if patients and self.mode == "ignore-count":  # the server hands everything back in one page
            environ = {**environ, "QUERY_STRING": environ.get("QUERY_STRING", "").replace("_count=100", "_count=1000")}
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.app(environ, keep))
        if patients and captured["status"].startswith("200"):
            bundle = json.loads(body)
            if self.mode == "repeat" and bundle.get("entry"):
                bundle["entry"].append(bundle["entry"][0])
            elif self.mode == "ignore-count":
                bundle["link"] = [link for link in bundle.get("link", []) if link.get("relation") != "next"]
            elif self.mode == "short-total":
                bundle["total"] = bundle.get("total", len(bundle.get("entry", []))) + 50
            body = json.dumps(bundle).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture(params=["repeat", "ignore-count", "short-total"])
def misbehaving(request: pytest.FixtureRequest) -> Iterator[tuple[str, ReferenceServer]]:
    with ReferenceServer(Misbehaving(ReferenceApi(residents=110), request.param)) as s:  # type: ignore[arg-type]
        yield request.param, s


EXPECTED = {
    "repeat": "came back on more than one page",
    "ignore-count": "more than the _count of 100 asked for",
    "short-total": "Bundle.total says",
}


def test_an_incomplete_harvest_never_passes(misbehaving: tuple[str, ReferenceServer]) -> None:
    mode, server = misbehaving
    a = run_api(server.url)
    read = a.result.rule("HARNESS-READ-001")
    assert read.outcome == Outcome.ERROR
    assert any(EXPECTED[mode] in f.message for f in read.findings), [f.message for f in read.findings]
    assert a.decision.outcome == "fail"


HOSTILE_MODES = ["repeat", "ignore-count", "short-total", "leaky-errors"]


def _hostile(mode: str) -> tuple[ReferenceApi, Any]:
    if mode == "leaky-errors":  # stack traces, and a resident's details in every error and an error header
        app = ReferenceApi(residents=30, defects=["stack-traces", "patient-data-in-errors"])
        return app, app
    app = ReferenceApi(residents=110)
    return app, Misbehaving(app, mode)


@pytest.mark.parametrize("mode", HOSTILE_MODES)
def test_a_hostile_server_never_passes_and_leaves_no_trace_of_its_patients(
        mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, wsgi = _hostile(mode)
    monkeypatch.setenv("REF_TOKEN", TOKEN)
    with ReferenceServer(wsgi) as server:
        res = CliRunner().invoke(cli_app, ["run", "asl-dscr-core", "--api", server.url, "--token-env", "REF_TOKEN",
                                           "--allow-insecure-local", "--out", str(tmp_path), "--as-of", "2026-11-01"])
    assert res.exit_code != 0, res.output  # never a PASS
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["decision"]["outcome"] == "fail"
    if mode == "leaky-errors":
        leak = next(r for r in report["rules"] if r["id"] == "API-ERR-002")
        assert leak["level"] == "MUST" and leak["outcome"] == "fail"
        assert any("patient data (a date of birth, a name, an NHS number)" in f["message"]
                   for f in report["findings"] if f["rule"] == "API-ERR-002")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in files if p.parent.name == "evidence"]) > 10
    written = {p: p.read_text(encoding="utf-8") for p in files}
    written[Path("terminal output")] = res.output
    for path, text in written.items():
        assert TOKEN not in text, path
        found = sorted(v for v in personal_values(app) if re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", text))
        assert found == [], f"{path} carries patient data: {len(found)} values"
