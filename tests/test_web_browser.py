"""The workspace end to end in a real Chromium, as the assurance team uses it, with a screenshot of each page.

An admin creates an assessor; the assessor signs in, opens a round, sees the submissions `round
run` made, opens a finding's evidence, witnesses a manual step with an evidence file, grants a
waiver, records and signs a decision, previews and publishes the list. A viewer sees none of the
buttons and a POST forged from the viewer's session is refused; a POST without the CSRF token too.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.registry.service import Registry
from harness.reports.signing import load_private_key
from harness.suites import Catalogue
from harness.web import serve
from harness.web.app import Workspace
from tests.browser import artifacts, browser
from tests.workspace import PASSWORDS, UNANSWERED, Populated, populate

SHOTS = artifacts("workspace")


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    return populate(tmp_path_factory.mktemp("workspace-browser"))


@pytest.fixture(scope="module")
def site(populated: Populated) -> Iterator[str]:
    """The workspace served by uvicorn on a loopback port, as `care-assure serve` runs it."""
    with Registry.open(populated.db, populated.store) as registry:
        ws = Workspace(registry, Catalogue.default(), load_private_key(populated.keys["private"]),
                       populated.root / "published")
        sock = serve.bind("127.0.0.1", 0)
        server = serve.server(ws, sock)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started
        try:
            yield serve.url_of(sock)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _shot(page: Any, name: str) -> None:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _sign_in(page: Any, site: str, user: str, password: str | None = None) -> None:
    page.goto(f"{site}/login")
    page.fill("#username", user)
    page.fill("#password", password or PASSWORDS[user])
    page.click("form[action='/login'] button")
    assert page.inner_text("#whoami").startswith(user)


def _flash(page: Any) -> str:
    text: str = page.inner_text("#flash")
    return text


def test_assessor_workflow_in_chromium(chromium: str, site: str, populated: Populated, tmp_path: Path) -> None:
    with browser(chromium) as b:
        errors: list[str] = []
        admin = b.new_page(viewport={"width": 1280, "height": 900})
        admin.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(admin, site, "admin")
        admin.goto(f"{site}/users")
        _shot(admin, "01-users")
        admin.fill("#new-username", "alice")
        admin.select_option("#role", "assessor")
        admin.fill("#new-password", "alice-password-123")
        admin.click("#add-user button")
        assert "User alice (assessor) created" in _flash(admin)
        admin.click("button:has-text('Sign out')")
        assert admin.url.endswith("/login")

        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, site, "alice", "alice-password-123")
        _shot(page, "02-rounds")
        page.click("a[href='/rounds/R1']")
        assert "Round R1" in page.inner_text("h1")
        assert page.locator("section.supplier").count() == 2
        _shot(page, "03-round")

        # the API supplier's submission: a finding's evidence exchange, redacted as stored
        page.click("#supplier-apico a[href^='/submissions/']")
        assert "API Care Ltd" in page.inner_text("h1")
        assert "Self-assessment" in page.inner_text("#signature-status")
        _shot(page, "04-submission")
        page.click("a.evidence-link >> nth=0")
        assert page.inner_text("h1").startswith("Evidence EX-")
        assert page.is_visible("#redacted")
        body = page.inner_text("body")
        assert not [v for v in populated.personal if re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", body)]
        _shot(page, "05-evidence")

        # the export supplier's submission: witness the unanswered attestation with an evidence file
        page.goto(f"{site}/submissions/{populated.submissions['expco']}")
        step = page.locator(f"#step-{UNANSWERED}")
        step.locator("input[value='met']").check()
        step.locator("textarea").fill("appointment letter and safety case seen")
        evidence = tmp_path / "cso-letter.pdf"
        evidence.write_bytes(b"%PDF-1.4 synthetic appointment letter\n")
        step.locator("input[type='file']").set_input_files(str(evidence))
        step.locator("button").click()
        assert f"{UNANSWERED} witnessed as met" in _flash(page)
        assert "Witnessed as met by alice" in page.inner_text(f"#step-{UNANSWERED}")

        # grant a waiver for the failing NHS number rule, then record and sign the decision
        page.click("header nav a[href='/waivers']")
        page.fill("#rule", "NHSNO-CHK-001")
        page.select_option("#supplier", "expco")
        page.fill("#justification", "the check-digit fix ships in release 2.2")
        page.fill("#owner", "Export Care Ltd, head of engineering")
        page.fill("#expires", "2099-06-30")
        page.click("#grant-waiver button")
        assert "granted for NHSNO-CHK-001" in _flash(page)
        _shot(page, "06-waivers")
        page.goto(f"{site}/rounds/R1")
        page.locator("#supplier-expco button:has-text('Record decision')").click()
        assert re.search(r"Decision \d+: PASS until .*, signed\.", _flash(page))
        _shot(page, "07-decided")

        page.click("header nav a[href='/list']")
        assert "Export Care Ltd" in page.inner_text("#listing")
        _shot(page, "08-list-preview")
        page.click("#publish button")
        assert "Published 1 entries" in _flash(page)
        assert (populated.root / "published" / "assured-list.json").is_file()
        page.click("header nav a[href='/audit']")
        assert "Audit log intact" in page.inner_text("#audit-status")
        assert "alice" in page.inner_text("#audit-table")
        _shot(page, "09-audit")

        # the whole report, as report.html renders it, inside the workspace
        page.goto(f"{site}/submissions/{populated.submissions['expco']}/report")
        assert page.inner_text("#decision-outcome") == "Fail"
        _shot(page, "10-report")

        # a viewer: no buttons, and a POST forged from the viewer's own session is refused
        viewer = b.new_page(viewport={"width": 1280, "height": 900})
        _sign_in(viewer, site, "viewer")
        for path in ("/rounds", "/rounds/R1", f"/submissions/{populated.submissions['expco']}", "/waivers", "/list"):
            viewer.goto(site + path)
            assert viewer.locator("main form").count() == 0, path
            assert viewer.locator("main button").count() == 0, path
        _shot(viewer, "11-viewer-list")
        token = viewer.locator("form.signout input[name='csrf']").get_attribute("value")
        forged = viewer.request.post(f"{site}/waivers/1/revoke", form={"csrf": token, "reason": "forged"},
                                     max_redirects=0)
        assert forged.status == 403 and "needs the assessor role" in forged.text()
        no_token = page.request.post(f"{site}/waivers/1/revoke", form={"reason": "no token"}, max_redirects=0)
        assert no_token.status == 403
        page.goto(f"{site}/waivers")
        assert "in force" in page.inner_text("#waiver-1")  # neither request changed anything
        assert not [e for e in errors if "Content Security Policy" in e], errors


def test_table_filter_is_a_progressive_enhancement(chromium: str, site: str) -> None:
    with browser(chromium) as b:
        page = b.new_page()
        _sign_in(page, site, "viewer")
        page.goto(f"{site}/audit")
        rows = page.locator("#audit-table tbody tr")
        total = rows.count()
        assert total > 5
        page.fill("input.filter", "round.open")
        visible = [i for i in range(total) if rows.nth(i).is_visible()]
        assert len(visible) == 1 and "round.open" in rows.nth(visible[0]).inner_text()
        js_off = b.new_context(java_script_enabled=False).new_page()
        _sign_in(js_off, site, "viewer")
        js_off.goto(f"{site}/audit")
        assert not js_off.is_visible("input.filter")  # without script the box stays hidden; the table is whole
        assert js_off.locator("#audit-table tbody tr").count() == total
