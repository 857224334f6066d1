"""The workspace's routes: thin handlers over ``harness.registry`` (no rule about rounds, waivers or
decisions lives here), rendered with Jinja2 on the server; every action works without JavaScript.

Reading needs the viewer role; every state change needs assessor (users: admin), a valid CSRF
token and a POST. Registry errors come back to the page they were made on, in words.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from harness.attestations import attestation_inputs, kept_name
from harness.errors import ConfigurationError
from harness.evidence import EVIDENCE_ID
from harness.registry import accounts
from harness.registry.assured_list import build_listing, publish
from harness.registry.models import User
from harness.registry.service import MAX_UPLOAD, Registry, waiver_in_force
from harness.reports.html import environment, render_html, report_view
from harness.reports.signing import key_id, verify_document
from harness.suites import Catalogue
from harness.web.security import (
    CSRF_FIELD,
    BodyLimit,
    BodyTooLarge,
    LoginLimiter,
    SecurityHeaders,
    csrf_ok,
    csrf_token,
)

HERE = Path(__file__).parent
SESSION_HOURS = 8
MAX_EXCHANGE = 5 * 1024 * 1024  # an evidence exchange shown in a page
EXCHANGE_ID = re.compile(r"^EX-\d{1,9}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
TEAM = "care-assure assurance team"


@dataclass
class Workspace:
    registry: Registry
    catalogue: Catalogue
    signing_key: Ed25519PrivateKey | None = None
    publish_dir: Path = Path("assured-list")
    limiter: LoginLimiter = field(default_factory=LoginLimiter)

    @property
    def public_key(self) -> Ed25519PublicKey | None:
        return self.signing_key.public_key() if self.signing_key else None


TEMPLATES = environment(HERE / "templates")


# -- request helpers -----------------------------------------------------------------------------------------

def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


def _user(request: Request) -> User | None:
    """The signed-in account (looked up once per request: a disabled one is no one)."""
    if not hasattr(request.state, "user"):
        name = request.session.get("user")
        request.state.user = _ws(request).registry.user(name) if isinstance(name, str) else None
    user: User | None = request.state.user
    return user


def _need(request: Request, role: str) -> User:
    user = _user(request)
    if user is None:
        raise HTTPException(303, headers={"Location": f"/login?next={request.url.path}"})
    if not accounts.may(user.role, role):
        raise HTTPException(403, f"this needs the {role} role; you are signed in as a {user.role}")
    return user


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    user = _user(request)
    flash = request.session.pop("flash", None)
    html = TEMPLATES.get_template(template).render(
        request=request, user=user, csrf=csrf_token(request.session), flash=flash,
        can_act=bool(user and accounts.may(user.role, "assessor")),
        is_admin=bool(user and accounts.may(user.role, "admin")),
        signing=_ws(request).signing_key is not None, **context)
    return HTMLResponse(html, status_code=status)


def _back(request: Request, url: str, text: str, kind: str = "success") -> RedirectResponse:
    request.session["flash"] = {"kind": kind, "text": text}
    return RedirectResponse(url, status_code=303)


async def _form(request: Request) -> FormData:
    """The posted form, after the CSRF check (403 without a valid token)."""
    try:
        form = await request.form(max_files=1, max_fields=40, max_part_size=MAX_UPLOAD)
    except BodyTooLarge:
        raise  # answered with 413 by the BodyLimit middleware
    except Exception as exc:  # noqa: BLE001 - python-multipart raises several kinds for a malformed body
        raise HTTPException(400, f"the form could not be read: {exc}") from None
    if not csrf_ok(request.session, form.get(CSRF_FIELD)):
        await form.close()
        raise HTTPException(403, "the form's security token is missing or out of date; reload the page and "
                                 "try again")
    return form


def _text(form: FormData, name: str, *, required: bool = False, limit: int = 4000) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise ConfigurationError(f"'{name.replace('_', ' ')}' is required")
    if len(text) > limit:
        raise ConfigurationError(f"'{name.replace('_', ' ')}' is longer than {limit} characters")
    return text


def _date(form: FormData, name: str, *, required: bool = False) -> dt.date | None:
    text = _text(form, name, required=required, limit=10)
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"'{name}' must be a date as yyyy-mm-dd, not '{text}'") from None


def _acting(request: Request, user: User) -> Registry:
    return _ws(request).registry.acting_as(user.username)


async def _act(request: Request, role: str, back: str,
               action: Callable[[Registry, FormData], Any], done: Callable[[Any], str]) -> Response:
    """Check role and CSRF, run ``action`` on the registry as the signed-in user, and go back with its result."""
    user = _need(request, role)
    form = await _form(request)
    try:
        result = await run_in_threadpool(action, _acting(request, user), form)
    except ConfigurationError as exc:
        return _back(request, back, str(exc), "error")
    finally:
        await form.close()  # uploaded files' temporary copies go now
    return _back(request, back, done(result))


# -- signing in ----------------------------------------------------------------------------------------------

def login_page(request: Request) -> Response:
    return _page(request, "login.html.j2", next=_safe_next(request.query_params.get("next")))


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never a redirect elsewhere."""
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


async def login(request: Request) -> Response:
    form = await _form(request)
    ws = _ws(request)
    username = _text(form, "username", limit=64).lower()
    password = form.get("password")
    client = request.client.host if request.client else "?"
    wait = ws.limiter.retry_after(client, username)
    if wait:
        return _page(request, "login.html.j2", status=429, next="/",
                     error=f"Too many failed sign-ins. Try again in {wait} seconds.")
    user = await run_in_threadpool(ws.registry.authenticate, username, password if isinstance(password, str) else "")
    if user is None:
        ws.limiter.failed(client, username)
        return _page(request, "login.html.j2", status=401, next=_safe_next(_text(form, "next")),
                     error="The user name or password is not right.")
    ws.limiter.succeeded(username)
    request.session.clear()  # a new session: nothing from before sign-in carries over
    request.session["user"] = user.username
    return _back(request, _safe_next(_text(form, "next")), f"Signed in as {user.username} ({user.role}).")


async def logout(request: Request) -> Response:
    await _form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# -- rounds --------------------------------------------------------------------------------------------------

def home(request: Request) -> Response:
    return RedirectResponse("/rounds", status_code=303)


def rounds_page(request: Request) -> Response:
    _need(request, "viewer")
    ws = _ws(request)
    return _page(request, "rounds.html.j2", rounds=ws.registry.rounds(),
                 suites=sorted(ws.catalogue.suite_paths()), today=dt.date.today())


async def round_open(request: Request) -> Response:
    ws = _ws(request)

    def action(reg: Registry, form: FormData) -> Any:
        opens = _date(form, "opens", required=True)
        closes = _date(form, "closes", required=True)
        as_of = _date(form, "as_of") or opens
        assert opens and closes and as_of
        return reg.open_round(_text(form, "round_id", required=True, limit=64), _text(form, "suite", required=True),
                              as_of, opens, closes, ws.catalogue)

    return await _act(request, "assessor", "/rounds", action, lambda r: f"Round {r.id} opened.")


def round_page(request: Request) -> Response:
    _need(request, "viewer")
    reg = _ws(request).registry
    round_id = request.path_params["round_id"]
    try:
        detail = reg.round_detail(round_id)
    except ConfigurationError as exc:
        raise HTTPException(404, str(exc)) from None
    today = dt.date.today()
    suppliers: dict[tuple[str, str], dict[str, Any]] = {}
    for sub in detail["submissions"]:
        entry = suppliers.setdefault((sub["supplier"], sub["solution"]), {
            "supplier": sub["supplier"], "solution": sub["solution"], "submissions": [], "decision": None})
        entry["submissions"].append(sub)
    for d in detail["decisions"]:
        if (d["supplier"], d["solution"]) in suppliers:  # decisions come in order: the last is current
            suppliers[(d["supplier"], d["solution"])]["decision"] = d
    waivers = [(w, handle) for w, handle in reg.waivers() if waiver_in_force(w, round_id, today)]
    return _page(request, "round.html.j2", round=detail["round"], suppliers=list(suppliers.values()),
                 waivers=waivers, today=today)


async def round_close(request: Request) -> Response:
    round_id = request.path_params["round_id"]
    return await _act(request, "assessor", f"/rounds/{round_id}", lambda reg, _f: reg.close_round(round_id),
                      lambda r: f"Round {r.id} closed; it takes no more submissions.")


async def round_decide(request: Request) -> Response:
    round_id = request.path_params["round_id"]
    ws = _ws(request)

    def action(reg: Registry, form: FormData) -> Any:
        sign = form.get("sign") == "yes"
        if sign and ws.signing_key is None:
            raise ConfigurationError("this workspace has no signing key (start it with --signing-key); "
                                     "the decision was not recorded")
        name, _, version = _text(form, "solution", required=True).rpartition(" ")
        row, _report = reg.decide(round_id, _text(form, "supplier", required=True), solution=name,
                                  solution_version=version, expires=_date(form, "expires"),
                                  key=ws.signing_key if sign else None, signer=TEAM)
        return row

    return await _act(request, "assessor", f"/rounds/{round_id}", action,
                      lambda row: f"Decision {row.id}: {row.outcome.upper()} until {row.expires}, "
                                  f"{'signed' if row.key_id else 'not signed'}.")


# -- submissions ---------------------------------------------------------------------------------------------

def _submission(request: Request) -> dict[str, Any]:
    try:
        return _ws(request).registry.submission(int(request.path_params["submission_id"]))
    except ConfigurationError as exc:
        raise HTTPException(404, str(exc)) from None


def _signature_status(report: dict[str, Any], public_key: Ed25519PublicKey | None) -> dict[str, str]:
    sig = report.get("signature")
    if not isinstance(sig, dict):
        return {"kind": "self", "text": "Self-assessment: the supplier's run report is not signed."}
    if public_key is None:
        return {"kind": "unknown", "text": f"Signed with key {sig.get('key_id')}; this workspace has no team key "
                                           "to check it with."}
    problems = verify_document(report, public_key)
    if problems:
        return {"kind": "bad", "text": f"The signature does not verify with the team key: {problems[0]}"}
    return {"kind": "good", "text": f"Signed by {sig.get('signer')} with the team key {key_id(public_key)}; "
                                    "the signature verifies."}


def submission_page(request: Request) -> Response:
    _need(request, "viewer")
    ws = _ws(request)
    found = _submission(request)
    report = found["report"]
    view = report_view(report)
    latest = {w.rule_id: w for w in found["witnesses"]}
    return _page(request, "submission.html.j2", sub=found["submission"], round=found["round"],
                 supplier=found["supplier"], solution=found["solution"], report=report, view=view,
                 signature=_signature_status(report, ws.public_key), witnesses=found["witnesses"], latest=latest,
                 manual=[r for r in report["rules"] if r["outcome"] == "manual"],
                 attested=[r for r in report["rules"] if (r.get("message") or "").startswith("attested ")],
                 attestation_files=[{**i, "link": kept_name(i["path"]).removeprefix("attestations/")}
                                    for i in attestation_inputs(report["run"]["target"]["inputs"])],
                 decisions=ws.registry.decisions_for(found["submission"].id),
                 evidence_mode=report["run"].get("evidence", {}).get("mode"))


REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")


def _report_response(report: dict[str, Any], submission_id: int) -> Response:
    """The report page as `report.html` renders it (no script: its filters are CSS), evidence linked here."""
    html = render_html(report, evidence_base=f"/submissions/{submission_id}/evidence/")
    return Response(html, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": REPORT_CSP})


def submission_report(request: Request) -> Response:
    _need(request, "viewer")
    found = _submission(request)
    return _report_response(found["report"], found["submission"].id)


def decision_report(request: Request) -> Response:
    _need(request, "viewer")
    found = _submission(request)
    wanted = int(request.path_params["decision_id"])
    for d in _ws(request).registry.decisions_for(found["submission"].id):
        if d.id == wanted:
            return _report_response(orjson.loads(d.report), found["submission"].id)
    raise HTTPException(404, f"submission {found['submission'].id} has no decision {wanted}")


def exchange_page(request: Request) -> Response:
    _need(request, "viewer")
    found = _submission(request)
    exchange_id = request.path_params["exchange_id"].removesuffix(".json")
    if not EXCHANGE_ID.match(exchange_id):
        raise HTTPException(404, "not an evidence id")
    sub = found["submission"]
    try:
        with zipfile.ZipFile(sub.evidence_path) as zf:
            info = zf.getinfo(f"evidence/{exchange_id}.json")
            if info.file_size > MAX_EXCHANGE:
                raise HTTPException(413, f"{exchange_id} is {info.file_size:,} bytes; too large to show here")
            exchange = orjson.loads(zf.read(info))
    except KeyError:
        raise HTTPException(404, f"submission {sub.id}'s evidence bundle has no exchange {exchange_id}") from None
    except (OSError, zipfile.BadZipFile, orjson.JSONDecodeError) as exc:
        raise HTTPException(500, f"submission {sub.id}'s evidence bundle cannot be read: {exc}") from None
    body = exchange.get("response_body")
    if isinstance(body, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    mode = found["report"]["run"].get("evidence", {}).get("mode")
    return _page(request, "exchange.html.j2", sub=sub, exchange=exchange, body=body, mode=mode,
                 findings=[f for f in found["report"]["findings"]
                           if exchange_id in EVIDENCE_ID.findall(f.get("location") or "")])


def attestation_file(request: Request) -> Response:
    """An attestation's evidence file from the submission's bundle, only when it still has the hash the report pins."""
    _need(request, "viewer")
    found = _submission(request)
    wanted = "attestations/" + request.path_params["name"]
    pinned = {kept_name(i["path"]): i for i in attestation_inputs(found["report"]["run"]["target"]["inputs"])}
    if wanted not in pinned:
        raise HTTPException(404, "the report pins no such attestation file")
    try:
        with zipfile.ZipFile(found["submission"].evidence_path) as zf:
            info = zf.getinfo(wanted)
            if info.file_size > MAX_UPLOAD:
                raise HTTPException(413, f"{wanted} is {info.file_size:,} bytes; too large to serve here")
            data = zf.read(info)
    except KeyError:
        raise HTTPException(404, "the evidence bundle does not hold this file (the run was made without it)") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise HTTPException(500, f"the evidence bundle cannot be read: {exc}") from None
    if hashlib.sha256(data).hexdigest() != pinned[wanted]["sha256"]:
        raise HTTPException(409, f"{wanted} in the bundle does not have the SHA-256 the report pins; not served")
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{_download_name(wanted)}"'})


def _download_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.rsplit("/", 1)[-1])[:100] or "evidence"


async def witness(request: Request) -> Response:
    submission_id = int(request.path_params["submission_id"])

    def action(reg: Registry, form: FormData) -> Any:
        upload = form.get("evidence")
        data = kind = None
        if isinstance(upload, UploadFile) and upload.filename:
            data = upload.file.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                raise ConfigurationError(f"the evidence file is larger than {MAX_UPLOAD:,} bytes")
            kind = upload.content_type
        answer = _text(form, "answer", required=True)
        if answer not in ("met", "not-met"):
            raise ConfigurationError("the answer must be 'met' or 'not met'")
        return reg.witness(submission_id, _text(form, "rule", required=True, limit=100), answer=answer == "met",
                           note=_text(form, "note"), evidence=data or None, evidence_type=kind)

    return await _act(request, "assessor", f"/submissions/{submission_id}", action,
                      lambda w: f"Recorded: {w.rule_id} witnessed as {'met' if w.answer else 'not met'}.")


def upload_file(request: Request) -> Response:
    _need(request, "viewer")
    sha = request.path_params["sha256"]
    reg = _ws(request).registry
    path = reg.upload_path(sha) if SHA256.match(sha) else None
    if path is None or not path.is_file():
        raise HTTPException(404, "no such evidence file")
    return Response(path.read_bytes(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="evidence-{sha[:12]}"'})


# -- waivers -------------------------------------------------------------------------------------------------

def waivers_page(request: Request) -> Response:
    _need(request, "viewer")
    reg = _ws(request).registry
    today = dt.date.today()
    rows = [{"w": w, "supplier": handle or "all suppliers",
             "state": "revoked" if w.revoked_at else ("expired" if w.expires < today else "in force")}
            for w, handle in reg.waivers()]
    return _page(request, "waivers.html.j2", waivers=rows, rounds=reg.rounds(),
                 suppliers=[sup.handle for sup, _ in reg.suppliers()])


async def waiver_grant(request: Request) -> Response:
    ws = _ws(request)

    def action(reg: Registry, form: FormData) -> Any:
        known = {r.id for pack in ws.catalogue.packs().values() for r in pack.rules}
        expires = _date(form, "expires", required=True)
        assert expires is not None
        return reg.grant_waiver(_text(form, "rule", required=True, limit=100),
                                justification=_text(form, "justification", required=True), expires=expires,
                                supplier=_text(form, "supplier") or None, round_id=_text(form, "round") or None,
                                known_rules=known, owner=_text(form, "owner", limit=200))

    return await _act(request, "assessor", "/waivers", action,
                      lambda w: f"Waiver {w.id} granted for {w.rule_id} until {w.expires}.")


async def waiver_revoke(request: Request) -> Response:
    waiver_id = int(request.path_params["waiver_id"])
    return await _act(request, "assessor", "/waivers",
                      lambda reg, form: reg.revoke_waiver(waiver_id, _text(form, "reason")),
                      lambda w: f"Waiver {w.id} revoked; decisions that relied on it lapse.")


# -- audit, the list, users ----------------------------------------------------------------------------------

def audit_page(request: Request) -> Response:
    _need(request, "viewer")
    ws = _ws(request)
    chain = ws.registry.verify_audit(ws.public_key)
    return _page(request, "audit.html.j2", chain=chain, entries=list(reversed(ws.registry.audit_entries())))


def list_page(request: Request) -> Response:
    _need(request, "viewer")
    ws = _ws(request)
    listing = build_listing(ws.registry, ws.public_key, dt.date.today()) if ws.public_key else None
    return _page(request, "list.html.j2", listing=listing, publish_dir=ws.publish_dir)


async def list_publish(request: Request) -> Response:
    ws = _ws(request)

    def action(reg: Registry, _form: FormData) -> Any:
        if ws.signing_key is None:
            raise ConfigurationError("this workspace has no signing key (start it with --signing-key); "
                                     "nothing was published")
        return publish(reg, ws.signing_key, ws.publish_dir, dt.date.today(), TEAM)

    return await _act(request, "assessor", "/list", action,
                      lambda listing: f"Published {len(listing.entries)} entries to {ws.publish_dir}; "
                                      f"audit head {listing.audit_head[:16]}… signed.")


def users_page(request: Request) -> Response:
    _need(request, "admin")
    return _page(request, "users.html.j2", users=_ws(request).registry.users(), roles=accounts.ROLES)


async def user_add(request: Request) -> Response:
    def action(reg: Registry, form: FormData) -> Any:
        password = form.get("password")
        return reg.add_user(_text(form, "username", required=True, limit=64), _text(form, "role", required=True),
                            password if isinstance(password, str) else "")

    return await _act(request, "admin", "/users", action, lambda u: f"User {u.username} ({u.role}) created.")


async def user_disable(request: Request) -> Response:
    username = request.path_params["username"]
    return await _act(request, "admin", "/users", lambda reg, _f: reg.disable_user(username),
                      lambda u: f"User {u.username} disabled.")


# -- the application -----------------------------------------------------------------------------------------

async def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 303 and exc.headers:
        return RedirectResponse(exc.headers["Location"], status_code=303)
    return _page(request, "error.html.j2", status=exc.status_code, status_code=exc.status_code, detail=exc.detail)


Handler = Callable[[Request], Awaitable[Response] | Response]


def create_app(workspace: Workspace, secret: str, *, https: bool = False) -> Starlette:
    """The ASGI application: ``secret`` signs the session cookies (keep it out of logs and reports)."""
    post: list[tuple[str, Handler]] = [
        ("/login", login), ("/logout", logout), ("/rounds", round_open), ("/rounds/{round_id}/close", round_close),
        ("/rounds/{round_id}/decide", round_decide), ("/submissions/{submission_id:int}/witness", witness),
        ("/waivers", waiver_grant), ("/waivers/{waiver_id:int}/revoke", waiver_revoke),
        ("/list/publish", list_publish), ("/users", user_add), ("/users/{username}/disable", user_disable)]
    get: list[tuple[str, Handler]] = [
        ("/", home), ("/login", login_page), ("/rounds", rounds_page), ("/rounds/{round_id}", round_page),
        ("/submissions/{submission_id:int}", submission_page),
        ("/submissions/{submission_id:int}/report", submission_report),
        ("/submissions/{submission_id:int}/decisions/{decision_id:int}/report", decision_report),
        ("/submissions/{submission_id:int}/evidence/{exchange_id}", exchange_page),
        ("/submissions/{submission_id:int}/attestations/{name:path}", attestation_file),
        ("/uploads/{sha256}", upload_file), ("/waivers", waivers_page), ("/audit", audit_page),
        ("/list", list_page), ("/users", users_page)]
    routes: list[Route | Mount] = [Route(path, fn, methods=["POST"]) for path, fn in post]
    routes += [Route(path, fn, methods=["GET"]) for path, fn in get]
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _error}, middleware=[
        Middleware(SecurityHeaders, https=https),
        Middleware(BodyLimit, limit=MAX_UPLOAD + 256 * 1024),
        Middleware(SessionMiddleware, secret_key=secret, session_cookie="care_assure_session",
                   max_age=SESSION_HOURS * 3600, same_site="strict", https_only=https),
    ])
    app.state.workspace = workspace
    return app
