"""A server whose search pages repeat resources, ignore _count or fall short of their total: never a PASS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from fixtures.reference_server import ReferenceApi, ReferenceServer
from harness.results import Outcome
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
