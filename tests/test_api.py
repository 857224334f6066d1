"""The API target against the reference supplier on a loopback port, and against broken servers."""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fixtures.export_generator import Generator
from fixtures.reference_server import API_DEFECTS, CLIENT_ID, CLIENT_SECRET, TOKEN, ReferenceApi, ReferenceServer
from harness.cli import app
from harness.errors import ConfigurationError
from harness.evidence import EvidenceStore, Redactor
from harness.results import Outcome
from harness.runner import Assessment, assess
from harness.targets.api import ApiTarget
from harness.targets.http_client import ClientConfig, FhirClient, check_address
from tests.helpers import AS_OF

MET = (Outcome.PASS, Outcome.NOT_APPLICABLE)


def api_target(url: str, **config: Any) -> ApiTarget:
    cfg = ClientConfig(base_url=url, allow_insecure_local=True, **{"token": TOKEN, **config})
    return ApiTarget(FhirClient(cfg, EvidenceStore(Redactor())))


def run_api(url: str, **config: Any) -> Assessment:
    return assess("asl-dscr-core", api_target(url, **config), as_of=AS_OF)


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(ReferenceApi(residents=12)) as s:
        yield s


def failing(a: Assessment) -> set[str]:
    return {r.rule for r in a.result.rules if r.outcome not in MET}


def test_conforming_server_passes_every_rule(server: ReferenceServer) -> None:
    a = run_api(server.url)
    assert failing(a) == set(), [(r.rule, r.message) for r in a.result.rules if r.outcome not in MET]
    assert a.decision.outcome == "pass"
    api_rules = [r for r in a.result.rules if r.rule.startswith("API-")]
    assert len(api_rules) == 12 and all(r.outcome == Outcome.PASS for r in api_rules)
    # export rules ran on API data too
    assert a.result.rule("NHSNO-CHK-001").subjects == 12
    assert a.result.rule("FHIR-STRUCT-001").subjects == a.result.resources_read > 100
    assert "FHIR-REF-001" not in {r.rule for r in a.result.rules}  # export only


@pytest.mark.parametrize("name", sorted(API_DEFECTS))
def test_each_api_defect_fails_exactly_its_rules(name: str) -> None:
    with ReferenceServer(ReferenceApi(residents=8, defects=[name])) as s:
        a = run_api(s.url)
    # the suite's share of the defect's rules (property rules live in asl-dscr-api-properties)
    expected = {r for r in API_DEFECTS[name].rules if not r.startswith("API-PROP-")}
    assert failing(a) == expected
    for rule in expected:
        r = a.result.rule(rule)
        assert r.outcome == Outcome.FAIL
        assert all(f.location and f.location.request and "[EX-" in f.location.request for f in r.findings)


def test_export_defect_seen_through_the_api_locates_the_request() -> None:
    with ReferenceServer(ReferenceApi(residents=8, defects=["nhs-bad-checksum"])) as s:
        a = run_api(s.url)
    assert failing(a) == {"NHSNO-CHK-001"}
    finding = a.result.rule("NHSNO-CHK-001").findings[0]
    assert finding.resource_id == "resident-0002"
    assert finding.location is not None and finding.location.request is not None
    assert finding.location.request.startswith("GET http://127.0.0.1:") and "Patient?_count=100" in \
        finding.location.request and finding.location.pointer == "/entry/2/resource"


def test_oauth2_client_credentials(server: ReferenceServer) -> None:
    a = run_api(server.url, token=None, oauth_token_url=f"{server.url}/oauth/token", client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET)
    assert a.decision.outcome == "pass"
    assert a.evidence is not None
    dump = str([vars(e) for e in a.evidence.exchanges])
    assert CLIENT_SECRET not in dump and TOKEN not in dump


def test_bad_oauth_client_is_a_configuration_error(server: ReferenceServer) -> None:
    with pytest.raises(ConfigurationError, match="OAuth2 token request failed"):
        run_api(server.url, token=None, oauth_token_url=f"{server.url}/oauth/token", client_id="x",
                client_secret="wrong")


def _patient_data() -> tuple[set[str], set[str]]:
    numbers, names = set(), set()
    for r in Generator(12, seed=1, administrations=3, observations=3).resources():
        if r["resourceType"] in ("Patient", "RelatedPerson"):
            numbers.update(i["value"] for i in r.get("identifier", []))
            names.update(n["family"] for n in r.get("name", []))
    return numbers, names


@pytest.mark.parametrize("mode", ["redacted", "full"])
def test_reports_and_evidence_never_carry_secrets_or_unasked_patient_data(
        server: ReferenceServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("REF_TOKEN", TOKEN)
    res = CliRunner().invoke(app, ["run", "asl-dscr-core", "--api", server.url, "--token-env", "REF_TOKEN",
                                   "--allow-insecure-local", "--out", str(tmp_path), "--evidence", mode,
                                   "--as-of", "2026-11-01"])
    assert res.exit_code == 0, res.output
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len([p for p in files if p.parent.name == "evidence"]) > 20
    text = "\n".join(p.read_text(encoding="utf-8") for p in files) + res.output
    numbers, names = _patient_data()
    assert TOKEN not in text
    leaked_numbers = {n for n in numbers if n in text}
    leaked_names = {n for n in names if re.search(rf"\b{re.escape(n)}\b", text)}
    if mode == "redacted":
        assert leaked_numbers == set() and leaked_names == set()
        assert "«nhs-1»" in text
    else:
        assert leaked_numbers and leaked_names
        assert "kept in full at the tester's request" in text


# --- misbehaving servers ----------------------------------------------------------------------

def _raw_server(handler: Callable[[socket.socket], None]) -> tuple[str, Callable[[], None]]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            handler(self.request)

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop() -> None:
        srv.shutdown()
        srv.server_close()
    return f"http://127.0.0.1:{srv.server_address[1]}", stop


def _silent(sock: socket.socket) -> None:
    sock.recv(65536)
    time.sleep(3)


def _reset(sock: socket.socket) -> None:
    sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def _html(sock: socket.socket) -> None:
    sock.recv(65536)
    body = b"<html><body>Login</body></html>"
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))


def _endless(sock: socket.socket) -> None:
    sock.recv(65536)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: 2147483648\r\n\r\n")
    chunk = b"[" + b" " * 65535
    try:
        for _ in range(40_000):  # up to ~2.6 GB, but the client stops at its limit
            sock.sendall(chunk)
    except OSError:
        pass


@pytest.mark.parametrize(("handler", "message"), [
    (_silent, "timed out"), (_reset, "connection failed"), (_html, "response is not JSON (text/html)"),
    (_endless, "larger than the 1,048,576-byte limit"),
])
def test_broken_targets_are_errors_not_hangs(handler: Callable[[socket.socket], None], message: str) -> None:
    url, stop = _raw_server(handler)
    try:
        start = time.monotonic()
        a = run_api(url, read_timeout=0.5, connect_timeout=0.5, max_body=1024 * 1024, retries=0)
        elapsed = time.monotonic() - start
    finally:
        stop()
    read = a.result.rule("HARNESS-READ-001")
    assert read.outcome == Outcome.ERROR
    assert message in read.findings[0].message
    # without a usable CapabilityStatement nothing can be tested: not a verdict on the supplier
    assert a.result.rule("API-CAP-001").outcome == Outcome.ERROR
    assert a.decision.outcome == "could-not-evaluate"
    assert message in (a.result.could_not_evaluate or "")
    assert elapsed < 20


def test_retry_after_is_honoured() -> None:
    hits: list[float] = []

    def flaky(sock: socket.socket) -> None:
        sock.recv(65536)
        hits.append(time.monotonic())
        if len(hits) == 1:
            sock.sendall(b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            body = b'{"resourceType":"CapabilityStatement"}'
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    url, stop = _raw_server(flaky)
    try:
        client = api_target(url).client
        result = client.request("GET", "metadata")
    finally:
        stop()
    assert result.status == 200 and len(hits) == 2
    assert hits[1] - hits[0] >= 0.9


def test_redirect_to_another_origin_is_refused() -> None:
    def redirect(sock: socket.socket) -> None:
        sock.recv(65536)
        sock.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:9/steal\r\nContent-Length: 0\r\n\r\n")

    url, stop = _raw_server(redirect)
    try:
        result = api_target(url).client.request("GET", "metadata")
    finally:
        stop()
    assert result.error == "redirect to another origin refused (127.0.0.2)"


@pytest.mark.parametrize(("url", "message"), [
    ("http://example.org/fhir", "is not HTTPS"),
    ("https://127.0.0.1/fhir", "a private or local address"),
    ("https://10.1.2.3/fhir", "a private or local address"),
    ("https://[::1]/fhir", "a private or local address"),
    ("ftp://example.org", "is not an http(s) URL"),
])
def test_hostile_addresses_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        check_address(url, allow_insecure_local=False)
    if url.startswith("http"):
        check_address(url, allow_insecure_local=True)


def test_paging_link_to_another_origin_is_not_followed() -> None:
    def bundle(sock: socket.socket) -> None:
        sock.recv(65536)
        body = (b'{"resourceType":"Bundle","type":"searchset","entry":[],'
                b'"link":[{"relation":"next","url":"http://169.254.169.254/latest/meta-data"}]}')
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    url, stop = _raw_server(bundle)
    try:
        items = list(api_target(url).items_for_type("Patient"))
    finally:
        stop()
    assert [getattr(i, "message", None) for i in items] == ["search for Patient failed: link to another origin refused"]
