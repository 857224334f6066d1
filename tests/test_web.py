"""The web workspace at the HTTP level: every state-changing route checks role and CSRF token, sign-in
is rate-limited, pages carry the security headers, uploads are capped and kept by hash, and every
action lands in the audit log under the signed-in user.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.registry.service import MAX_UPLOAD, Registry
from harness.reports.signing import load_private_key
from harness.suites import Catalogue
from harness.web.app import Workspace, create_app
from tests.workspace import PASSWORDS, UNANSWERED, Populated, populate

NEXT_YEAR = (dt.date.today() + dt.timedelta(days=365)).isoformat()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    return populate(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def registry(populated: Populated) -> Iterator[Registry]:
    with Registry.open(populated.db, populated.store) as reg:
        yield reg


@pytest.fixture(scope="module")
def app(populated: Populated, registry: Registry) -> Any:
    ws = Workspace(registry, Catalogue.default(), load_private_key(populated.keys["private"]),
                   populated.root / "published")
    return create_app(ws, "s" * 48)


def _token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def signed_in(app: Any, user: str | None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if user is not None:
        res = client.post("/login", data={"csrf": _token(client), "username": user, "password": PASSWORDS[user],
                                          "next": "/rounds"})
        assert res.status_code == 303 and res.headers["location"] == "/rounds", res.text
    return client


# Every state-changing route, with a form that would succeed for the right role.
ROUTES: list[tuple[str, dict[str, str], str]] = [
    ("/rounds", {"round_id": "R-NEW", "suite": "asl-dscr-core", "opens": "2026-01-01", "closes": "2099-01-01"},
     "assessor"),
    ("/rounds/R1/close", {}, "assessor"),
    ("/rounds/R1/decide", {"supplier": "expco", "solution": "ExpCare 2.1", "sign": "yes"}, "assessor"),
    ("/submissions/1/witness", {"rule": UNANSWERED, "answer": "not-met", "note": "no safety officer named"},
     "assessor"),
    ("/waivers", {"rule": "NHSNO-CHK-001", "supplier": "expco", "justification": "fix in 3.0", "expires": NEXT_YEAR},
     "assessor"),
    ("/waivers/1/revoke", {"reason": "no longer needed"}, "assessor"),
    ("/list/publish", {}, "assessor"),
    ("/users", {"username": "mallory", "role": "admin", "password": "mallory-password-1"}, "admin"),
    ("/users/viewer/disable", {}, "admin"),
]


@pytest.mark.parametrize(("path", "form", "role"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_state_change_needs_the_role_and_the_csrf_token(app: Any, registry: Registry, path: str,
                                                              form: dict[str, str], role: str) -> None:
    before = len(registry.audit_entries())
    anonymous = TestClient(app, follow_redirects=False)
    res = anonymous.post(path, data={**form, "csrf": _token(anonymous)})
    assert res.status_code == 303 and res.headers["location"].startswith("/login"), (path, res.status_code)
    weaker = "viewer" if role == "assessor" else "assessor"
    client = signed_in(app, weaker)
    res = client.post(path, data={**form, "csrf": _token(client, "/rounds")})
    assert res.status_code == 403, (path, weaker, res.status_code)
    assert f"needs the {role} role" in res.text
    allowed = signed_in(app, role)
    for bad in ({}, {"csrf": "x" * 43}, {"csrf": _token(signed_in(app, role), "/rounds")}):  # none, forged, another's
        res = allowed.post(path, data={**form, **bad})
        assert res.status_code == 403, (path, bad, res.status_code)
        assert "security token" in res.text
    assert len(registry.audit_entries()) == before, f"{path}: a refused request changed the registry"


def test_viewer_sees_no_action_buttons(app: Any) -> None:
    viewer = signed_in(app, "viewer")
    for page in ("/rounds", "/rounds/R1", "/submissions/1", "/waivers", "/list"):
        html = viewer.get(page).text
        actions = re.findall(r'<form[^>]*\baction="([^"]+)"', html)
        assert actions == ["/logout"], (page, actions)
    assert viewer.get("/users").status_code == 403
    assessor = signed_in(app, "assessor")
    assert "/rounds/R1/decide" in assessor.get("/rounds/R1").text
    assert "/submissions/1/witness" in assessor.get("/submissions/1").text


def test_pages_carry_security_headers_and_session_cookie_flags(app: Any) -> None:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert not re.search(r"<script>|\son[a-z]+=", page.text)  # no inline script or handlers
    report = signed_in(app, "viewer").get("/submissions/1/report")
    assert report.status_code == 200 and "script-src 'none'" in report.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in report.headers["content-security-policy"]


def test_sign_in_is_rate_limited_and_never_redirects_off_site(app: Any) -> None:
    client = TestClient(app, follow_redirects=False)
    for _ in range(5):
        res = client.post("/login", data={"csrf": _token(client), "username": "assessor", "password": "wrong-guess-1"})
        assert res.status_code == 401 and "not right" in res.text
    res = client.post("/login", data={"csrf": _token(client), "username": "assessor",
                                      "password": PASSWORDS["assessor"]})
    assert res.status_code == 429 and "Too many failed sign-ins" in res.text  # even with the right password
    other = TestClient(app, follow_redirects=False)  # the admin, from the same address, is held back too
    res = other.post("/login", data={"csrf": _token(other), "username": "admin", "password": PASSWORDS["admin"]})
    assert res.status_code == 429
    app.state.workspace.limiter.failures.clear()
    fresh = TestClient(app, follow_redirects=False)
    res = fresh.post("/login", data={"csrf": _token(fresh), "username": "admin", "password": PASSWORDS["admin"],
                                     "next": "//evil.example/"})
    assert res.status_code == 303 and res.headers["location"] == "/"


def test_a_disabled_account_loses_its_session_at_once(app: Any, registry: Registry) -> None:
    registry.acting_as("setup").add_user("temp-assessor", "assessor", "temp-password-123")
    PASSWORDS["temp-assessor"] = "temp-password-123"
    client = signed_in(app, "temp-assessor")
    assert client.get("/rounds").status_code == 200
    registry.acting_as("admin").disable_user("temp-assessor")
    res = client.get("/rounds")
    assert res.status_code == 303 and res.headers["location"].startswith("/login")


def test_uploads_are_capped_and_kept_by_hash(app: Any, populated: Populated) -> None:
    client = signed_in(app, "assessor")
    token = _token(client, "/submissions/1")
    uploads = populated.store / "uploads"
    before = sorted(uploads.rglob("*")) if uploads.exists() else []
    huge = client.post("/submissions/1/witness", data={"csrf": token, "rule": UNANSWERED, "answer": "met"},
                       files={"evidence": ("big.pdf", b"x" * (MAX_UPLOAD + 300 * 1024), "application/pdf")})
    assert huge.status_code == 413 and "nothing was changed" in huge.text
    chunks = (b"x" * 65536 for _ in range((MAX_UPLOAD // 65536) + 8))  # no Content-Length: counted as it comes
    streamed = client.post("/submissions/1/witness", content=chunks,
                           headers={"content-type": "multipart/form-data; boundary=zzz"})
    assert streamed.status_code == 413
    assert (sorted(uploads.rglob("*")) if uploads.exists() else []) == before


def test_assessor_actions_through_the_service_recorded_with_the_user(app: Any, registry: Registry,
                                                                     populated: Populated) -> None:
    client = signed_in(app, "assessor")
    page = client.get("/submissions/1")
    assert UNANSWERED in page.text and "Not answered yet" in page.text
    token = _token(client, "/submissions/1")
    evidence = b"%PDF-1.4 the CSO appointment letter, seen on screen\n"
    name = "../../etc/cron.d/evil name.pdf"
    res = client.post("/submissions/1/witness", data={"csrf": token, "rule": UNANSWERED, "answer": "met",
                                                      "note": "letter seen"},
                      files={"evidence": (name, evidence, "application/pdf")})
    assert res.status_code == 303
    sha = hashlib.sha256(evidence).hexdigest()
    kept = populated.store / "uploads" / sha[:2] / sha
    assert kept.read_bytes() == evidence
    assert not any("evil" in p.name or "cron" in p.name for p in populated.root.rglob("*"))
    download = client.get(f"/uploads/{sha}")
    assert download.content == evidence and download.headers["content-type"] == "application/octet-stream"
    assert "attachment" in download.headers["content-disposition"]
    assert client.get("/uploads/" + "0" * 64).status_code == 404
    assert client.get("/uploads/..%2F..%2Fassure.db").status_code == 404

    # a met answer without evidence, and a not-met answer without a note, are refused in words
    res = client.post("/submissions/1/witness", data={"csrf": token, "rule": UNANSWERED, "answer": "met"},
                      follow_redirects=True)
    assert "needs the evidence file" in res.text

    res = client.post("/waivers", data={"csrf": token, "rule": "NHSNO-CHK-001", "supplier": "expco",
                                        "justification": "checksum fix ships in 3.0", "owner": "Export Care CTO",
                                        "expires": NEXT_YEAR}, follow_redirects=True)
    assert "Waiver 1 granted for NHSNO-CHK-001" in res.text
    res = client.post("/rounds/R1/decide", data={"csrf": token, "supplier": "expco", "solution": "ExpCare 2.1",
                                                 "sign": "yes"}, follow_redirects=True)
    assert re.search(r"Decision \d+: PASS until [\d-]+, signed", res.text), res.text[-2000:]
    sub = client.get("/submissions/1").text
    assert "Witnessed as <strong>met</strong> by assessor" in sub
    decision = re.search(r'href="(/submissions/1/decisions/\d+/report)"', sub)
    assert decision
    cert_page = client.get(decision.group(1)).text
    assert "Certification." in cert_page and 'id="decision-outcome">Pass<' in cert_page

    preview = client.get("/list").text
    assert "Export Care Ltd" in preview and "ExpCare" in preview
    res = client.post("/list/publish", data={"csrf": token}, follow_redirects=True)
    assert "Published 1 entries" in res.text
    assert (populated.root / "published" / "assured-list.json").is_file()

    res = client.post("/waivers/1/revoke", data={"csrf": token, "reason": ""}, follow_redirects=True)
    assert "needs a reason" in res.text
    res = client.post("/waivers/1/revoke", data={"csrf": token, "reason": "the fix shipped"}, follow_redirects=True)
    assert "Waiver 1 revoked" in res.text
    assert "No solution would be listed" in client.get("/list").text  # the decision relied on the waiver

    entries = registry.audit_entries()
    done = [(e["action"], e["actor"]) for e in entries if e["actor"] == "assessor"]
    assert [a for a, _ in done] == ["witness.record", "waiver.grant", "decision.create", "audit.seal",
                                    "waiver.revoke"]
    audit = client.get("/audit").text
    assert "Audit log intact" in audit and "witness.record" in audit


def test_admin_creates_an_assessor(app: Any, registry: Registry) -> None:
    admin = signed_in(app, "admin")
    token = _token(admin, "/users")
    res = admin.post("/users", data={"csrf": token, "username": "new-assessor", "role": "assessor",
                                     "password": "short"}, follow_redirects=True)
    assert "at least 12 characters" in res.text
    res = admin.post("/users", data={"csrf": token, "username": "new-assessor", "role": "assessor",
                                     "password": "a-long-enough-password"}, follow_redirects=True)
    assert "User new-assessor (assessor) created" in res.text
    created = next(e for e in registry.audit_entries() if e["action"] == "user.create" and e["subject"] ==
                   "new-assessor")
    assert created["actor"] == "admin"
    PASSWORDS["new-assessor"] = "a-long-enough-password"
    assert "new-assessor (assessor)" in signed_in(app, "new-assessor").get("/rounds").text


def test_evidence_exchange_is_shown_redacted(app: Any, populated: Populated) -> None:
    viewer = signed_in(app, "viewer")
    sub = viewer.get("/submissions/2").text
    links = re.findall(r'href="(/submissions/2/evidence/EX-\d+)"', sub)
    assert links, "the API supplier's findings link their evidence"
    for link in links[:5]:
        page = viewer.get(link).text
        assert "Shown as stored" in page and "kept in full" not in page
        found = sorted(v for v in populated.personal if re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", page))
        assert found == [], f"{link} shows personal data"
    assert viewer.get("/submissions/2/evidence/EX-99999").status_code == 404
    assert viewer.get("/submissions/2/evidence/..%2Freport").status_code == 404


def test_attestation_evidence_is_served_only_with_its_pinned_hash(app: Any) -> None:
    viewer = signed_in(app, "viewer")
    sub = viewer.get("/submissions/1").text
    links = re.findall(r'href="(/submissions/1/attestations/[^"]+)"', sub)
    assert any(link.endswith("/evidence/audit-design.md") for link in links)
    got = viewer.get(next(x for x in links if x.endswith("audit-design.md")))
    assert got.status_code == 200 and got.content.startswith(b"#")
    assert viewer.get("/submissions/1/attestations/../report.json").status_code == 404


def test_a_run_kept_in_full_says_so_on_every_exchange(app: Any, populated: Populated) -> None:
    from fixtures.reference_server import ReferenceApi, ReferenceServer
    from tests.workspace import cli

    cli("supplier", "add", "fullco", "--name", "Full Care Ltd", "--solution", "FullCare", "--solution-version", "1",
        "--db", populated.db)
    with ReferenceServer(ReferenceApi(residents=3, defects=["no-auth"])) as server:
        cli("round", "run", "R1", "--supplier", "fullco", "--api", server.url, "--token-env", "REF_TOKEN",
            "--allow-insecure-local", "--evidence", "full", "--out", populated.root / "run-fullco",
            "--store", populated.store, "--db", populated.db)
    viewer = signed_in(app, "viewer")
    sub_id = max(int(x) for x in re.findall(r'href="/submissions/(\d+)"', viewer.get("/rounds/R1").text))
    sub = viewer.get(f"/submissions/{sub_id}").text
    assert "Full Care Ltd" in sub and "kept in full" in sub
    link = re.search(rf'href="(/submissions/{sub_id}/evidence/EX-\d+)"', sub)
    assert link
    page = viewer.get(link.group(1)).text
    assert 'id="unredacted"' in page and "shown unredacted" in page and "Shown as stored" not in page


def test_round_witness_on_the_command_line_is_the_same_service(populated: Populated, registry: Registry) -> None:
    from typer.testing import CliRunner

    from harness.cli import app as cli_app
    from tests.workspace import cli

    runner_env = {"CARE_ASSURE_ACTOR": "bob", "COLUMNS": "200"}
    refused = CliRunner().invoke(cli_app, ["round", "witness", "2", UNANSWERED, "--not-met", "--db", populated.db,
                                           "--store", str(populated.store)], env=runner_env)
    assert refused.exit_code == 2 and "needs a note" in refused.output and "Traceback" not in refused.output
    wrong = CliRunner().invoke(cli_app, ["round", "witness", "2", "NHSNO-CHK-001", "--not-met", "--note", "x",
                                         "--db", populated.db], env=runner_env)
    assert wrong.exit_code == 2 and "only steps no data could show" in wrong.output
    done = CliRunner().invoke(cli_app, ["round", "witness", "2", UNANSWERED, "--not-met", "--note",
                                        "no clinical safety officer has been appointed", "--db", populated.db,
                                        "--store", str(populated.store)], env=runner_env)
    assert done.exit_code == 0, done.output
    decided = cli("round", "decide", "R1", "--supplier", "apico", "--out", populated.root / "cert-apico",
                  "--db", populated.db, actor="bob")
    assert decided.exit_code == 1
    cert = json.loads((populated.root / "cert-apico" / "report.json").read_text(encoding="utf-8"))
    step = next(r for r in cert["rules"] if r["id"] == UNANSWERED)
    assert step["outcome"] == "fail" and step["message"].startswith("witnessed as not met by bob on ")
    assert [w["rule"] for w in cert["certification"]["witnessed"]] == [UNANSWERED]
    assert cert["certification"]["witnessed"][0]["answer"] == "not met"
    assert registry.verify_audit().problems == []
