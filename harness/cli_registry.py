"""The assurance team's commands: keys, signing, rounds, suppliers, waivers, audit, the assured list.

Thin shells over ``harness.registry`` and ``harness.reports.signing``: parse, call, render, exit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape

if TYPE_CHECKING:
    from harness.registry.service import Registry

from harness import progress
from harness.cli_common import (
    DEFAULTS,
    EXIT_FAIL,
    EXIT_PASS,
    OUTPUT,
    REGISTRY,
    AllowInsecureOpt,
    ApiOpt,
    CaOpt,
    CertOpt,
    ClientIdOpt,
    ClientSecretEnvOpt,
    ConnectTimeoutOpt,
    CsvMapOpt,
    EvidenceOpt,
    ExportOpt,
    KeyOpt,
    ListTable,
    OAuthUrlOpt,
    PageLimitOpt,
    ReadTimeoutOpt,
    ScopeOpt,
    TokenEnvOpt,
    build_target,
    config_error,
    err,
    out,
    parse_date,
    progress_reporter,
)
from harness.errors import ConfigurationError
from harness.progress import reporting
from harness.reports.canonical import dumps
from harness.runner import assess, write_reports
from harness.suites import Catalogue

FORECAST_ALL = dt.date(9999, 12, 31)

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="registry database URL (default $CARE_ASSURE_DB or sqlite:///assure.db)")]
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="where evidence bundles are kept (default $CARE_ASSURE_STORE or ./assure-evidence)")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="who is acting (default $CARE_ASSURE_ACTOR or $USER)")]
SigningKeyOpt = Annotated[Path | None, typer.Option("--signing-key", help="the team's Ed25519 private key (PEM)")]
SignerOpt = Annotated[str, typer.Option("--signer", help="name recorded as the signer")]
TEAM = "care-assure assurance team"
PublicKeyOpt = Annotated[Path, typer.Option("--public-key", help="the team's Ed25519 public key (PEM)")]
SolutionOpt = Annotated[str | None, typer.Option(
    "--solution", help="the solution's name, when the supplier has more than one", rich_help_panel="Registry")]
SolutionVersionOpt = Annotated[str | None, typer.Option(
    "--solution-version", help="the solution's version, when the supplier has more than one",
    rich_help_panel="Registry")]
RoundArg = Annotated[str, typer.Argument(help="the round's id")]
PacksDirOpt = Annotated[list[Path] | None, typer.Option("--packs-dir", help="extra rule-pack directory")]

keys_app = typer.Typer(no_args_is_help=True, help="Signing keys of the assurance team.")
supplier_app = typer.Typer(no_args_is_help=True, help="Suppliers and their solutions.")
round_app = typer.Typer(no_args_is_help=True, help="Certification rounds: open, submit, decide, close.")
waiver_app = typer.Typer(no_args_is_help=True, help="Justified, time-limited exemptions from a rule.")
audit_app = typer.Typer(no_args_is_help=True, help="The registry's hash-chained audit log.")
list_app = typer.Typer(no_args_is_help=True, help="The Assured Solutions List.")
users_app = typer.Typer(no_args_is_help=True, help="Accounts of the web workspace (`care-assure serve`).")


def _registry(db: str | None, store: Path | None = None, actor: str | None = None) -> Registry:
    from harness.registry.service import Registry  # noqa: PLC0415 - SQLAlchemy loads only for registry commands

    return Registry.open(db, store, actor)


def _read_report(path: Path) -> Any:
    from harness.registry.service import read_report  # noqa: PLC0415 - see _registry

    return read_report(path)


def _signing() -> ModuleType:
    """The signing module (cryptography), loaded only by the commands that sign or verify."""
    from harness.reports import signing  # noqa: PLC0415 - see the docstring

    return signing


def _private_key(path: Path | None) -> Any:
    """The assurance team's signing key, if one is given."""
    return _signing().load_private_key(path) if path else None


def _html() -> ModuleType:
    from harness.reports import html  # noqa: PLC0415 - Jinja2 loads only when HTML is written

    return html


def _bundles() -> ModuleType:
    from harness.reports import bundle  # noqa: PLC0415 - loaded by the evidence-bundle commands only

    return bundle


def _assured() -> ModuleType:
    from harness.registry import assured_list  # noqa: PLC0415 - SQLAlchemy loads only for registry commands

    return assured_list


def _required_date(value: str, option: str) -> dt.date:
    day = parse_date(value)
    if day is None:
        raise typer.BadParameter(f"{option} is required")
    return day


# -- keys and signatures -----------------------------------------------------------------------------------

@keys_app.command("generate")
def keys_generate(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for NAME.key and NAME.pub")] = Path("keys"),
    name: Annotated[str, typer.Option("--name", help="file name stem")] = "assurance-team",
) -> None:
    """Generate an Ed25519 key pair; the private key is written with mode 0600."""
    try:
        pair = _signing().generate_keys(out_dir, name)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"private key {pair.private} (keep it off shared disks; never commit it)\n"
              f"public key  {pair.public}\nkey id      {pair.key_id}", highlight=False)


def _report_file(path: Path) -> Path:
    return path / "report.json" if path.is_dir() else path


def sign_command(
    path: Annotated[Path, typer.Argument(help="report.json or the directory holding it")],
    signing_key: Annotated[Path, typer.Option("--signing-key", help="the team's Ed25519 private key (PEM)")],
    signer: SignerOpt = TEAM,
) -> None:
    """Sign report.json in place (RFC 8785 + Ed25519) and re-render report.html beside it."""
    try:
        report_path = _report_file(path)
        _, report = _read_report(report_path)
        signed = _signing().sign_document(report, _signing().load_private_key(signing_key), signer)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    report_path.write_bytes(dumps(signed))
    html = report_path.with_name("report.html")
    if html.exists():
        html.write_bytes(_html().render_html(signed))
    out.print(f"signed {report_path} with key {signed['signature']['key_id']}", highlight=False)


def verify_command(
    path: Annotated[Path, typer.Argument(help="report.json, a directory of reports, or an evidence bundle (.zip)")],
    public_key: PublicKeyOpt,
) -> None:
    """Check a signed report or evidence bundle offline; name everything that does not match."""
    try:
        key = _signing().load_public_key(public_key)
        targets = sorted(path.glob("*.zip")) if path.is_dir() else []
        if not path.is_dir() or (path / "report.json").exists():
            targets.insert(0, _report_file(path))
        if not targets:
            raise ConfigurationError(f"{path}: no report.json or evidence bundle to verify")
        failed = False
        for target in targets:
            if target.suffix == ".zip":
                problems = _bundles().verify_bundle(target, key)
            else:
                try:
                    problems = _signing().verify_document(orjson.loads(target.read_bytes()), key)
                except (OSError, orjson.JSONDecodeError) as exc:
                    problems = [f"cannot read it as JSON ({exc})"]
            failed |= bool(problems)
            if problems:
                for p in problems:
                    out.print(f"[red]FAIL[/red] {escape(str(target))}: {escape(p)}", highlight=False)
            else:
                out.print(f"[green]OK[/green]   {escape(str(target))}: signature and hashes match", highlight=False)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    raise typer.Exit(EXIT_FAIL if failed else EXIT_PASS)


def bundle_command(
    report_dir: Annotated[Path, typer.Argument(help="directory of a run's reports and evidence")],
    out_path: Annotated[Path, typer.Option("--out", help="the zip to write")],
    signing_key: SigningKeyOpt = None,
    signer: SignerOpt = TEAM,
) -> None:
    """Zip a run's reports and evidence with a SHA-256 manifest (signed when a key is given)."""
    try:
        manifest = _bundles().build_bundle(report_dir, out_path, key=_private_key(signing_key),
                                signer=signer)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    state = "signed" if "signature" in manifest else "unsigned"
    out.print(f"wrote {out_path}: {len(manifest['files'])} files, manifest {state}", highlight=False)


# -- suppliers ---------------------------------------------------------------------------------------------

@supplier_app.command("add")
def supplier_add(
    handle: Annotated[str, typer.Argument(help="short id, e.g. acme")],
    name: Annotated[str, typer.Option("--name", help="the supplier's name")],
    solution: Annotated[str, typer.Option("--solution", help="the solution's name")],
    solution_version: Annotated[str, typer.Option("--solution-version", help="the version under test")],
    care_setting: Annotated[list[str] | None, typer.Option("--care-setting", help="repeatable")] = None,
    capability: Annotated[list[str] | None, typer.Option("--capability", help="claimed capability; repeatable")]
    = None,
    db: DbOpt = None, actor: ActorOpt = None,
) -> None:
    """Register a supplier (if new) and one of its solutions."""
    try:
        with _registry(db, actor=actor) as registry:
            registry.add_supplier(handle, name, solution, solution_version, sorted(care_setting or []),
                                  sorted(capability or []))
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"registered {handle}: {solution} {solution_version}", highlight=False)


@supplier_app.command("list")
def supplier_list(db: DbOpt = None) -> None:
    """The suppliers and their solutions (name, version, capabilities, care settings)."""
    table = ListTable("supplier", "name", "solution", "version", "capabilities", "care settings")
    try:
        with _registry(db) as registry:
            for sup, sols in registry.suppliers():
                for sol in sols:
                    table.add_row(sup.handle, sup.name, sol.name, sol.version, ", ".join(sol.capabilities),
                                  ", ".join(sol.care_settings))
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(table)


# -- rounds ------------------------------------------------------------------------------------------------

@round_app.command("open")
def round_open(
    round_id: Annotated[str, typer.Argument(help="round id, e.g. 2026-R4")],
    suite: Annotated[str, typer.Option("--suite", help="suite id or YAML file")],
    as_of: Annotated[str, typer.Option("--as-of", help="the date rules are judged on")],
    opens: Annotated[str, typer.Option("--opens", help="first day submissions are taken")],
    closes: Annotated[str, typer.Option("--closes", help="last day submissions are taken")],
    packs_dir: PacksDirOpt = None, db: DbOpt = None, actor: ActorOpt = None,
) -> None:
    """Open a certification round for one suite version and as-of date."""
    try:
        with _registry(db, actor=actor) as registry:
            rnd = registry.open_round(
                round_id, suite, _required_date(as_of, "--as-of"), _required_date(opens, "--opens"),
                _required_date(closes, "--closes"), Catalogue.default(packs_dir or ()))
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"opened round {rnd.id}: {rnd.suite} {rnd.suite_version}, as of {rnd.as_of}, "
              f"submissions {rnd.opens} to {rnd.closes}", highlight=False)


@round_app.command("list")
def round_list(db: DbOpt = None) -> None:
    """The rounds: suite and version, as-of date, when they open and close, and whether open."""
    table = ListTable("round", "suite", "version", "as of", "opens", "closes", "status")
    try:
        with _registry(db) as registry:
            for r in registry.rounds():
                table.add_row(r.id, r.suite, r.suite_version, str(r.as_of), str(r.opens), str(r.closes), r.status)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(table)


@round_app.command("show")
def round_show(round_id: RoundArg, db: DbOpt = None) -> None:
    """One round: its submissions (re-tests in order) and decisions with their expiry."""
    try:
        with _registry(db) as registry:
            detail = registry.round_detail(round_id)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    r = detail["round"]
    out.print(f"round {r.id} ({r.status}): {r.suite} {r.suite_version}, as of {r.as_of}, {r.opens} to {r.closes}",
              highlight=False)
    subs = ListTable("submission", "supplier", "solution", "outcome", "report sha256", "by", "at", title="Submissions")
    for x in detail["submissions"]:
        subs.add_row(str(x["id"]), x["supplier"], x["solution"], x["outcome"], x["sha256"][:16], x["by"], x["at"])
    decs = ListTable("decision", "supplier", "solution", "outcome", "assessor", "decided", "expires", "signed",
                 title="Decisions")
    for d in detail["decisions"]:
        decs.add_row(str(d["id"]), d["supplier"], d["solution"], d["outcome"], d["assessor"], d["decided_on"],
                     d["expires"], "yes" if d["signed"] else "no")
    out.print(subs)
    out.print(decs)


@round_app.command("close")
def round_close(round_id: RoundArg, db: DbOpt = None, actor: ActorOpt = None) -> None:
    """Close a round: it takes no more submissions (decisions can still be recorded)."""
    try:
        with _registry(db, actor=actor) as registry:
            registry.close_round(round_id)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"closed round {round_id}", highlight=False)


@round_app.command("submit")
def round_submit(
    round_id: Annotated[str, typer.Argument(help="the round")],
    report_dir: Annotated[Path, typer.Argument(help="directory with the run's report.json (and evidence)")],
    supplier: Annotated[str, typer.Option("--supplier", help="supplier handle")],
    solution: SolutionOpt = None, solution_version: SolutionVersionOpt = None,
    signing_key: SigningKeyOpt = None, signer: SignerOpt = TEAM,
    db: DbOpt = None, store: StoreOpt = None, actor: ActorOpt = None,
) -> None:
    """Record a run's report and an evidence bundle of its directory as a new submission."""
    try:
        with _registry(db, store, actor) as registry:
            sub = registry.submit(
                round_id, supplier, report_dir, solution=solution, solution_version=solution_version,
                key=_private_key(signing_key), signer=signer)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"submission {sub.id}: {sub.outcome}, report sha256 {sub.report_sha256}, evidence {sub.evidence_path}",
              highlight=False)


@round_app.command("run")
def round_run(
    round_id: Annotated[str, typer.Argument(help="the round")],
    supplier: Annotated[str, typer.Option("--supplier", help="supplier handle", rich_help_panel=REGISTRY)],
    export: ExportOpt = None, csv_map: CsvMapOpt = None, api: ApiOpt = None,
    token_env: TokenEnvOpt = None, oauth_token_url: OAuthUrlOpt = None, client_id: ClientIdOpt = None,
    client_secret_env: ClientSecretEnvOpt = None, scope: ScopeOpt = None, cert: CertOpt = None, key: KeyOpt = None,
    ca: CaOpt = None,
    connect_timeout: ConnectTimeoutOpt = DEFAULTS.connect_timeout,
    read_timeout: ReadTimeoutOpt = DEFAULTS.read_timeout,
    page_limit: PageLimitOpt = DEFAULTS.page_limit,
    allow_insecure_local: AllowInsecureOpt = False,
    evidence: EvidenceOpt = DEFAULTS.evidence,
    out_dir: Annotated[Path | None, typer.Option("--out", help="where the run's reports go",
                                                 rich_help_panel=OUTPUT)] = None,
    attestations: Annotated[Path | None, typer.Option("--attestations", help="answers to attestation rules")]
    = None,
    solution: SolutionOpt = None, solution_version: SolutionVersionOpt = None,
    packs_dir: PacksDirOpt = None, signing_key: SigningKeyOpt = None,
    signer: SignerOpt = TEAM,
    db: DbOpt = None, store: StoreOpt = None, actor: ActorOpt = None,
) -> None:
    """Run the round's suite on a target (rules to come included as a forecast) and submit the result.

    Takes the same target, authentication and evidence options as `run`. Exit 0 when the
    submission is recorded, 2 for a usage, registry or target configuration error.
    """
    try:
        target = build_target(locals())
        with _registry(db, store, actor) as registry:
            rnd = registry.round(round_id)
            out.print(f"running {rnd.suite} {rnd.suite_version} on {supplier}'s target for round {round_id}",
                      highlight=False, soft_wrap=True)
            size = target.total_bytes() if hasattr(target, "total_bytes") else 0
            with reporting(progress_reporter(quiet=False)), contextlib.ExitStack() as stack:
                job = stack.enter_context(progress.task("reading the export", size, "bytes")) if size else None
                assessment = assess(rnd.suite_source, target, as_of=rnd.as_of, extra_pack_dirs=packs_dir or (),
                                    forecast_until=FORECAST_ALL, attestations=attestations,
                                    progress=job.advance if job else None)
            if assessment.suite.version != rnd.suite_version:
                raise ConfigurationError(f"installed suite {rnd.suite} is {assessment.suite.version}; round "
                                         f"'{round_id}' assesses {rnd.suite_version}")
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            run_dir = out_dir or Path("build") / "rounds" / round_id / f"{supplier}-{stamp}"
            write_reports(assessment, run_dir, ["json", "junit", "html"])
            sub = registry.submit(round_id, supplier, run_dir, solution=solution, solution_version=solution_version,
                                  key=_private_key(signing_key), signer=signer)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"run {run_dir}: {assessment.decision.outcome}; submission {sub.id} recorded", highlight=False)


@round_app.command("decide")
def round_decide(
    round_id: Annotated[str, typer.Argument(help="the round")],
    supplier: Annotated[str, typer.Option("--supplier", help="supplier handle")],
    solution: SolutionOpt = None, solution_version: SolutionVersionOpt = None,
    on: Annotated[str | None, typer.Option("--on", help="decision date (default today)")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="assurance expiry (default a year on)")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="write the certification report here")] = None,
    signing_key: SigningKeyOpt = None, signer: SignerOpt = TEAM,
    db: DbOpt = None, actor: ActorOpt = None,
) -> None:
    """Apply the round's policy and the waivers in force to the supplier's latest submission."""
    try:
        with _registry(db, actor=actor) as registry:
            row, report = registry.decide(
                round_id, supplier, solution=solution, solution_version=solution_version, on=parse_date(on),
                expires=parse_date(expires), key=_private_key(signing_key), signer=signer)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(row.report, encoding="utf-8")
        (out_dir / "report.html").write_bytes(_html().render_html(report))
    style = "green" if row.outcome == "pass" else "red"
    out.print(f"decision {row.id}: [{style}]{row.outcome.upper()}[/{style}] until {row.expires}; "
              f"{len(row.waivers)} waiver(s) applied; {'signed' if row.key_id else 'NOT signed'}; "
              f"report sha256 {row.report_sha256}", highlight=False)
    for rule in row.reasons:
        out.print(f"  blocking: {escape(rule)}", highlight=False)
    raise typer.Exit(EXIT_PASS if row.outcome == "pass" else EXIT_FAIL)


@round_app.command("witness")
def round_witness(
    submission: Annotated[int, typer.Argument(help="the submission's number (see `round show`)")],
    rule: Annotated[str, typer.Argument(help="the manual rule witnessed")],
    met: Annotated[bool, typer.Option("--met/--not-met", help="whether the assessor saw it met")],
    note: Annotated[str, typer.Option("--note", help="what was seen; required when not met")] = "",
    evidence: Annotated[Path | None, typer.Option(
        "--evidence", help="the file the assessor saw (kept by its SHA-256); required when met")] = None,
    db: DbOpt = None, store: StoreOpt = None, actor: ActorOpt = None,
) -> None:
    """Record an assessor's answer to a step no data could show; `round decide` applies it."""
    try:
        data = _upload(evidence) if evidence else None
        with _registry(db, store, actor) as registry:
            row = registry.witness(submission, rule, answer=met, note=note, evidence=data)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"witness answer {row.id}: {rule} {'met' if met else 'not met'} in submission {submission}"
              + (f"; evidence sha256 {row.evidence_sha256}" if row.evidence_sha256 else ""), highlight=False)


def _upload(path: Path) -> bytes:
    from harness.registry.service import MAX_UPLOAD  # noqa: PLC0415 - see _registry

    try:
        size = path.stat().st_size
        if size > MAX_UPLOAD:
            raise ConfigurationError(f"{path}: {size:,} bytes; an evidence file may have at most {MAX_UPLOAD:,}")
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the evidence file ({exc.strerror})") from None


# -- accounts ----------------------------------------------------------------------------------------------

@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="the sign-in name (lower case)")],
    role: Annotated[str, typer.Option("--role", help="viewer, assessor or admin")],
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="read the password from this environment variable (default: ask)")] = None,
    db: DbOpt = None, actor: ActorOpt = None,
) -> None:
    """Create an account for the web workspace; the password is kept only as an argon2 hash."""
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise config_error(ConfigurationError(f"--password-env {password_env}: the variable is not set"))
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with _registry(db, actor=actor) as registry:
            user = registry.add_user(username, role, password)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"user {user.username} ({user.role}) created", highlight=False)


@users_app.command("list")
def users_list(db: DbOpt = None) -> None:
    """Every account: name, role, who created it and whether it is disabled."""
    table = ListTable("user", "role", "created by", "created", "state")
    try:
        with _registry(db) as registry:
            for u in registry.users():
                table.add_row(u.username, u.role, u.created_by, u.created_at[:10],
                              f"disabled {u.disabled_at[:10]}" if u.disabled_at else "active")
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(table)


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="the account")], db: DbOpt = None,
                  actor: ActorOpt = None) -> None:
    """Disable an account at once: its sessions stop working on their next request."""
    try:
        with _registry(db, actor=actor) as registry:
            registry.disable_user(username)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"user {username} disabled", highlight=False)


# -- waivers -----------------------------------------------------------------------------------------------

@waiver_app.command("grant")
def waiver_grant(
    rule: Annotated[str, typer.Argument(help="the rule id waived")],
    justification: Annotated[str, typer.Option("--justification", help="why; recorded and published")],
    expires: Annotated[str, typer.Option("--expires", help="last day the waiver applies")],
    supplier: Annotated[str | None, typer.Option("--supplier", help="one supplier (default all)")] = None,
    round_id: Annotated[str | None, typer.Option("--round", help="one round (default all)")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="who sees the remediation through")] = None,
    packs_dir: PacksDirOpt = None, db: DbOpt = None, actor: ActorOpt = None,
) -> None:
    """Waive a failing rule for a supplier and/or round until a date, with a justification (audited)."""
    try:
        known = {r.id for pack in Catalogue.default(packs_dir or ()).packs().values() for r in pack.rules}
        with _registry(db, actor=actor) as registry:
            w = registry.grant_waiver(
                rule, justification=justification, expires=_required_date(expires, "--expires"), supplier=supplier,
                round_id=round_id, known_rules=known, owner=owner)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"waiver {w.id}: {rule} until {w.expires}", highlight=False)


@waiver_app.command("revoke")
def waiver_revoke(waiver_id: Annotated[int, typer.Argument(help="the waiver's number (see `waiver list`)")],
                  reason: Annotated[str, typer.Option("--reason", help="why it is revoked; recorded")],
                  db: DbOpt = None, actor: ActorOpt = None) -> None:
    """Revoke a waiver at once: decisions that relied on it lapse."""
    try:
        with _registry(db, actor=actor) as registry:
            registry.revoke_waiver(waiver_id, reason)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(f"revoked waiver {waiver_id}", highlight=False)


@waiver_app.command("list")
def waiver_list(db: DbOpt = None) -> None:
    """Every waiver: rule, scope, expiry, who granted it, and whether it is in force, expired or revoked."""
    table = ListTable("id", "rule", "supplier", "round", "expires", "granted by", "state", "justification")
    try:
        today = dt.date.today()
        with _registry(db) as registry:
            for w, handle in registry.waivers():
                state = "revoked" if w.revoked_at else ("expired" if w.expires < today else "in force")
                table.add_row(str(w.id), w.rule_id, handle or "all", w.round_id or "all", str(w.expires), w.granted_by,
                              state, w.justification)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(table)


# -- audit -------------------------------------------------------------------------------------------------

@audit_app.command("verify")
def audit_verify(
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="the team's public key: also check the signed heads and certifications")] = None,
    seal: Annotated[list[Path] | None, typer.Option(
        "--seal", help="a published audit-seal.json kept outside the registry, to check the log against")] = None,
    db: DbOpt = None, store: StoreOpt = None,
) -> None:
    """Check the hash chain, every row against the entry that recorded it, evidence files and signed heads.

    Exit 0 when everything holds, 1 naming each broken thing, 2 for a usage error.
    """
    try:
        key = _signing().load_public_key(public_key) if public_key else None
        seals = [_seal_file(p) for p in seal or ()]
        with _registry(db, store) as registry:
            chain = registry.verify_audit(key, seals)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    for note in chain.notes:
        out.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)
    if chain.problems:
        for problem in chain.problems:  # one line each, never wrapped: they name paths and hashes
            err.print(f"[red]audit log broken:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAIL)
    out.print(f"audit log intact: {chain.entries} entries, head {chain.head}", highlight=False)


def _seal_file(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the seal ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: not a JSON audit seal ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigurationError(f"{path}: not an audit seal")
    return doc


@audit_app.command("log")
def audit_log(db: DbOpt = None) -> None:
    """The audit log's entries: when, who, what and on what (check it with `audit verify`)."""
    table = ListTable("seq", "at", "actor", "action", "subject")
    try:
        with _registry(db) as registry:
            for e in registry.audit_entries():
                table.add_row(str(e["seq"]), e["at"], e["actor"], e["action"], e["subject"])
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(table)


# -- the assured list --------------------------------------------------------------------------------------

@list_app.command("publish")
def list_publish(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for assured-list.json/.csv, index.html")],
    signing_key: Annotated[Path, typer.Option(
        "--signing-key", help="the team's Ed25519 private key: certifications are checked against its public "
                              "half and the audit log's head is signed with it")],
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="the team's public key, if given: must be the signing key's")] = None,
    signer: SignerOpt = TEAM,
    as_of: Annotated[str | None, typer.Option("--as-of", help="listing date (default today)")] = None,
    db: DbOpt = None, store: StoreOpt = None,
) -> None:
    """Publish the solutions whose latest signed decision passed and is unexpired; sign the audit head."""
    signing = _signing()
    try:
        key = signing.load_private_key(signing_key)
        if public_key and signing.key_id(signing.load_public_key(public_key)) != signing.key_id(key.public_key()):
            raise ConfigurationError(f"{public_key} is not the public half of {signing_key}")
        with _registry(db, store) as registry:
            listing = _assured().publish(registry, key, out_dir, parse_date(as_of) or dt.date.today(), signer)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    for entry in listing.entries:
        out.print(f"listed {entry['supplier']}: {entry['solution']} {entry['version']} until {entry['expires']}",
                  highlight=False)
    for note in listing.left_out:
        out.print(f"[yellow]not listed:[/yellow] {escape(note)}", highlight=False)
    out.print(f"wrote {out_dir}/assured-list.json ({len(listing.entries)} entries); audit head "
              f"{listing.audit_head} signed", highlight=False)


@list_app.command("forecast")
def list_forecast(
    as_of: Annotated[str, typer.Option("--as-of", help="the future date to judge the listed solutions on")],
    public_key: PublicKeyOpt,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    packs_dir: PacksDirOpt = None, db: DbOpt = None,
) -> None:
    """Which listed solutions would fail the suite in force on a date, and by which rules (exit 1 if any)."""
    try:
        with _registry(db) as registry:
            result = _assured().forecast(registry, _signing().load_public_key(public_key),
                                         _required_date(as_of, "--as-of"), Catalogue.default(packs_dir or ()))
    except ConfigurationError as exc:
        raise config_error(exc) from None
    if as_json:
        out.print_json(json.dumps([{"supplier": f.supplier, "solution": f.solution, "expires": f.expires,
                                    "would_fail": f.would_fail, "rules": f.failing} for f in result]))
    else:
        for f in result:
            if not f.would_fail:
                out.print(f"[green]stays assured[/green] {f.supplier}: {f.solution}", highlight=False)
                continue
            out.print(f"[red]would fail[/red]    {f.supplier}: {f.solution}", highlight=False)
            for r in f.failing:
                out.print(f"    {r['rule']} ({r['level']}, from {r['effective_from']}): {r['outcome']} — "
                          f"{escape(r['title'])}", highlight=False)
    raise typer.Exit(EXIT_FAIL if any(f.would_fail for f in result) else EXIT_PASS)


def serve_command(
    db: DbOpt = None, store: StoreOpt = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port (0: any free port)")] = 8000,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", help="the team's Ed25519 private key: decisions can be signed and the list published")] = None,
    publish_dir: Annotated[Path, typer.Option("--publish-dir", help="where `Publish` writes the list")] = Path(
        "assured-list"),
    https: Annotated[bool, typer.Option(
        "--behind-https", help="served through an HTTPS proxy: Secure cookies and HSTS")] = False,
    url_file: Annotated[Path | None, typer.Option("--url-file", help="write the URL here once listening")] = None,
    packs_dir: PacksDirOpt = None,
) -> None:
    """The assurance team's web workspace over the registry: rounds, submissions, waivers, decisions, the list.

    Sign-in accounts come from `care-assure users add`. Set $CARE_ASSURE_SESSION_SECRET (32+ characters)
    to keep sessions across restarts.
    """
    from harness.web import serve  # noqa: PLC0415 - the web stack loads only for this command
    from harness.web.app import Workspace  # noqa: PLC0415

    try:
        key = _private_key(signing_key)
        registry = _registry(db, store)
        workspace = Workspace(registry, Catalogue.default(packs_dir or ()), key, publish_dir.absolute())
        sock = serve.bind(host, port)
        server = serve.server(workspace, sock, https=https)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    url = serve.url_of(sock)
    serve.write_url(url_file, url)
    if host not in ("127.0.0.1", "::1", "localhost") and not https:
        err.print("[yellow]warning:[/yellow] listening beyond this machine without --behind-https: passwords and "
                  "session cookies would cross the network in clear", highlight=False)
    out.print(f"care-assure workspace on {url}; evidence store {registry.store}; Ctrl-C stops it", highlight=False)
    try:
        server.run(sockets=[sock])
    finally:
        registry.close()


def register_registry_commands(app: typer.Typer, report_app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    report_app.command("sign")(sign_command)
    report_app.command("verify")(verify_command)
    report_app.command("bundle")(bundle_command)
    for sub, name in ((keys_app, "keys"), (supplier_app, "supplier"), (round_app, "round"), (waiver_app, "waiver"),
                      (audit_app, "audit"), (list_app, "list"), (users_app, "users")):
        app.add_typer(sub, name=name)


