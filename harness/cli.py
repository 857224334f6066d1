"""The ``care-assure`` command: parse, call the library, render, exit.

Exit codes: 0 the decision is pass; 1 the decision is fail (the supplier failed); 2 a usage or
configuration error (bad pack, unknown suite, missing path, a bad option value); 3 could not
evaluate (target unreachable, authentication refused, deadline reached or interrupted, nothing
readable, or the harness itself failed).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from fixtures.defect_names import API_DEFECTS, EXPORT_DEFECTS
from harness import __version__
from harness.attestations import ENV as ATTESTATIONS_ENV
from harness.cli_common import (
    DEFAULTS,
    EXIT_CONFIG,
    EXIT_FAIL,
    EXIT_NOT_EVALUATED,
    EXIT_PASS,
    OUTPUT,
    TARGET,
    WIDE,
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
    check_out_dir,
    config_error,
    err,
    fit_consoles,
    out,
    parse_date,
    print_item,
    progress_reporter,
)
from harness.cli_registry import register_registry_commands
from harness.cli_standards import register_standards_commands
from harness.decision import COULD_NOT_EVALUATE
from harness.errors import ConfigurationError
from harness.packs.generate import PackSpec, generate_pack
from harness.packs.loader import lint_paths
from harness.paths import standards_dir
from harness.progress import reporting
from harness.reports.diff import diff_reports
from harness.results import Outcome
from harness.runner import FORMATS, Assessment, assess, parse_formats, write_reports
from harness.stopping import DEFAULT_DEADLINE, Stop
from harness.suites import Catalogue
from harness.targets.export import ExportTarget
from harness.targets.options import TargetOptions
from harness.wording import crash

PROGRESS_MIN_BYTES = 20 * 1024 * 1024

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Conformance and accreditation harness for digital social care records.",
                  epilog="Exit codes, for every command: 0 pass (or done), 1 fail, 2 usage or configuration error, "
                         "3 could not evaluate — never a pass. Each command's --help says what it does.")


@app.callback()
def _each_command() -> None:
    """Before every command: the terminal width as the environment says now (COLUMNS, for CI logs)."""
    fit_consoles()


packs_app = typer.Typer(no_args_is_help=True, help="Rule packs: list and lint.")
suites_app = typer.Typer(no_args_is_help=True, help="Accreditation suites.")
app.add_typer(packs_app, name="packs")
app.add_typer(suites_app, name="suites")
reference_app = typer.Typer(no_args_is_help=True, help="The bundled reference supplier.")
report_app = typer.Typer(no_args_is_help=True, help="Work with reports.")
app.add_typer(report_app, name="report")
app.add_typer(reference_app, name="reference")
register_registry_commands(app, report_app)
register_standards_commands(packs_app, suites_app)

OUTCOME_STYLE = {"pass": "green", "fail": "red", "error": "bold red", "not-applicable": "dim",
                 "waived": "yellow", "manual": "yellow"}


@app.command()
def run(
    suite: Annotated[str, typer.Argument(help="suite id (see `suites list`) or a suite YAML file")],
    export: ExportOpt = None,
    csv_map: CsvMapOpt = None,
    api: ApiOpt = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="date rules are judged on (YYYY-MM-DD); default today")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the reports",
                                          rich_help_panel=OUTPUT)] = Path("reports/out"),
    formats: Annotated[str, typer.Option(
        "--format", help="comma-separated: json, junit, sarif, csv, html, xlsx",
        rich_help_panel=OUTPUT)] = "json,junit,html",
    package_dir: Annotated[Path | None, typer.Option(
        "--package-dir", help="FHIR package directory (value sets and profiles, e.g. UK Core)")] = None,
    packs_dir: Annotated[list[Path] | None, typer.Option("--packs-dir", help="extra rule-pack directory")] = None,
    token_env: TokenEnvOpt = None, oauth_token_url: OAuthUrlOpt = None, client_id: ClientIdOpt = None,
    client_secret_env: ClientSecretEnvOpt = None, scope: ScopeOpt = None, cert: CertOpt = None, key: KeyOpt = None,
    ca: CaOpt = None,
    connect_timeout: ConnectTimeoutOpt = DEFAULTS.connect_timeout,
    read_timeout: ReadTimeoutOpt = DEFAULTS.read_timeout,
    page_limit: PageLimitOpt = DEFAULTS.page_limit,
    deadline: Annotated[float, typer.Option(
        "--deadline", min=1, max=7 * 24 * 3600,
        help="seconds the whole run may take; then a partial report, exit 3")] = DEFAULT_DEADLINE,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", min=0, max=256,
        help="worker processes for an export (the report is the same); 0: one per core for exports of 8 MB or "
             "more; 1: in this process")] = 0,
    engine: Annotated[str, typer.Option(
        "--engine", help="local (this machine) or spark (PySpark: NDJSON from local, hdfs://, s3a:// paths; "
                         "the same report)")] = "local",
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="Spark master URL (default: $SPARK_HOME's configuration, else local[*])")] = None,
    allow_insecure_local: AllowInsecureOpt = False,
    allow_writes: Annotated[bool, typer.Option(
        "--allow-writes", help="let property rules create and change records (sandboxes only)",
        rich_help_panel=TARGET)] = False,
    seed: Annotated[int | None, typer.Option("--seed", min=0,
                                             help="seed for property rules (overrides the suite)")] = None,
    examples: Annotated[int | None, typer.Option(
        "--examples", min=1, max=100_000, help="examples per property rule (overrides the suite)")] = None,
    evidence: EvidenceOpt = DEFAULTS.evidence,
    attestations: Annotated[Path | None, typer.Option(
        "--attestations", help="answers to attestation rules (YAML; default $CARE_ASSURE_ATTESTATIONS)")] = None,
    forecast_until: Annotated[str | None, typer.Option(
        "--forecast-until", help="also evaluate rules coming into force by this date (report's forecast section)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the decision",
                                        rich_help_panel=OUTPUT)] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also print the first findings of each rule "
                                                                  "not met", rich_help_panel=OUTPUT)] = False,
) -> None:
    """Run a suite against a supplier's export or API and write the reports.

    Exit codes: 0 pass, 1 fail, 2 usage or configuration error, 3 could not evaluate (nothing
    readable, the deadline passed, interrupted, or a harness fault) — never a pass.
    """
    stop = Stop(deadline)
    try:
        day = parse_date(as_of)
        chosen = parse_formats(formats)
        check_out_dir(out_dir)
        target = build_target(locals(), engine=engine, spark_master=spark_master)
        total = target.total_bytes() if isinstance(target, ExportTarget) else 0
        with stop.on_signals(), reporting(progress_reporter(quiet)):
            if total >= PROGRESS_MIN_BYTES and not quiet and err.is_terminal:
                from rich.progress import (  # noqa: PLC0415 - only for a bar on a terminal
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TimeRemainingColumn,
                )

                with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                              TimeRemainingColumn(), console=err, transient=True) as bar:
                    task = bar.add_task("reading export", total=total)
                    result = assess(suite, target, as_of=day, extra_pack_dirs=packs_dir or (),
                                    package_dir=package_dir, progress=lambda n: bar.advance(task, n),
                                    forecast_until=parse_date(forecast_until), attestations=attestations,
                                    stop=stop, jobs=jobs)
            else:
                result = assess(suite, target, as_of=day, extra_pack_dirs=packs_dir or (), package_dir=package_dir,
                                forecast_until=parse_date(forecast_until), attestations=attestations, stop=stop,
                                jobs=jobs)
        written = write_reports(result, out_dir, chosen)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    except (typer.Exit, typer.BadParameter, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the harness failing is "could not evaluate", never a traceback
        err.print(f"[bold red]could not evaluate:[/bold red] {escape(crash(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_NOT_EVALUATED) from None
    if not quiet:
        _print_summary(result, verbose)
        for path in written:
            out.print(f"wrote {path}", highlight=False, soft_wrap=True)
    _print_decision(result)
    awaiting = sum(r.outcome == Outcome.MANUAL for r in result.result.rules)
    if awaiting and attestations is None and not os.environ.get(ATTESTATIONS_ENV):
        out.print(f"{awaiting} rule(s) await an attestation: answer them in a YAML file and give it with "
                  "--attestations FILE", highlight=False)
    raise typer.Exit({"pass": EXIT_PASS, COULD_NOT_EVALUATE: EXIT_NOT_EVALUATED}.get(result.decision.outcome,
                                                                                   EXIT_FAIL))


SHOWN_FINDINGS = 5
MARK = {"pass": "✓", "fail": "✗", "error": "?", "manual": "…", "not-applicable": "-", "waived": "~"}


def _print_summary(result: Assessment, verbose: bool = False) -> None:
    title = f"{result.suite.title} ({result.suite.id} {result.suite.version}), as of {result.result.as_of}"
    if out.width >= WIDE:
        from rich.table import Table  # noqa: PLC0415 - only on a wide terminal

        table = Table(title=title)
        for col in ("rule", "level", "outcome", "subjects", "failed", "errors"):
            table.add_column(col, justify="right" if col in ("subjects", "failed", "errors") else "left",
                             no_wrap=True, min_width=16 if col == "rule" else None)
        table.add_column("title", ratio=1)
        for r in result.result.rules:
            style = OUTCOME_STYLE.get(r.outcome.value, "")
            table.add_row(r.rule, r.level.value, f"[{style}]{r.outcome.value}[/{style}]", str(r.subjects),
                          str(r.failed), str(r.errors), r.title)
        out.print(table)
    else:
        out.print(title, highlight=False, soft_wrap=False)
        for r in result.result.rules:
            counts = ", ".join(part for part in (f"{r.subjects} checked" if r.subjects else "",
                                                 f"{r.failed} failed" if r.failed else "",
                                                 f"{r.errors} errors" if r.errors else "") if part)
            print_item(f"{MARK.get(r.outcome.value, ' ')} {r.rule} ({r.level.value}) {r.outcome.value}"
                       + (f": {counts}" if counts else ""), r.title, indent=0)
    if verbose:
        for r in result.result.rules:
            if r.outcome.value in ("pass", "not-applicable") or not r.findings:
                continue
            out.print(f"{r.rule}: {len(r.findings)} finding(s) kept", highlight=False, style="bold")
            for f in r.findings[:SHOWN_FINDINGS]:
                print_item(f.where(), f.message)
    out.print(f"{result.result.resources_read} resources read from {len(result.result.inputs)} input(s)")


def _print_decision(result: Assessment) -> None:
    d = result.decision
    if d.outcome == COULD_NOT_EVALUATE:
        out.print(f"decision: [bold red]COULD NOT EVALUATE[/bold red] — {escape(d.reasons[0].message)}; "
                  "this is not a verdict on the supplier", highlight=False, soft_wrap=True)
        for reason in d.reasons[1:]:
            out.print(f"  [red]?[/red] {reason.rule} ({reason.level}, {reason.outcome}): {escape(reason.message)}",
                      highlight=False, soft_wrap=True)
        return
    colour = "green" if d.outcome == "pass" else "red"
    out.print(f"decision: [bold {colour}]{d.outcome.upper()}[/bold {colour}]"
              + (f" — {len(d.reasons)} blocking" if d.reasons else "")
              + (f", {len(d.warnings)} warning(s)" if d.warnings else ""))
    for reason in d.reasons:
        out.print(f"  [red]✗[/red] {reason.rule} ({reason.level}, {reason.outcome}): {escape(reason.message)}",
                  highlight=False, soft_wrap=True)
    if result.suite.assessment == "self":
        out.print("[dim]Self-assessment: not an accreditation decision of the assurance team.[/dim]")


@packs_app.command("lint")
def packs_lint(paths: Annotated[list[Path] | None, typer.Argument(help="pack files or directories")] = None) -> None:
    """Check packs against the schema and the semantic rules; exit 2 on any problem."""
    try:
        packs, problems = lint_paths(paths or [standards_dir()])
    except ConfigurationError as exc:
        raise config_error(exc) from None
    for problem in problems:
        err.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
    rules = sum(len(p.rules) for p in packs)
    out.print(f"{len(packs)} pack(s), {rules} rule(s), {len(problems)} problem(s)")
    raise typer.Exit(EXIT_CONFIG if problems else EXIT_PASS)


@packs_app.command("generate")
def packs_generate(
    from_package: Annotated[Path, typer.Option("--from-package", help="FHIR package directory (JSON or XML)")],
    out_path: Annotated[Path, typer.Option("--out", help="the pack file to write")],
    pack: Annotated[str, typer.Option("--pack", help="pack id, e.g. uk-core.stu2")],
    profile: Annotated[list[str], typer.Option("--profile", help="profile canonical URL or name (repeatable)")],
    release: Annotated[str, typer.Option("--release", help="the package release, e.g. 2.0.2")],
    effective_from: Annotated[str, typer.Option("--effective-from", help="date the rules apply from")],
    title: Annotated[str, typer.Option("--title", help="the generated pack's title")] = "UK Core profiles",
    standard_id: Annotated[str, typer.Option("--standard-id", help="the id its rules cite")] = "UKCore",
    standard_title: Annotated[str, typer.Option("--standard-title", help="the cited standard's title")
                              ] = "HL7 FHIR UK Core",
    url: Annotated[str, typer.Option("--url", help="where the release is published")] =
        "https://github.com/NHSDigital/FHIR-R4-UKCORE-STAGING-MAIN",
    source: Annotated[str, typer.Option("--source", help="how to describe the input in the header")] = "",
) -> None:
    """Derive profile rules (cardinality, required bindings, fixed systems, must-support) from a package."""
    try:
        day = parse_date(effective_from)
        if day is None:
            raise ConfigurationError("--effective-from is required")
        urls = [p if "/" in p else f"https://fhir.hl7.org.uk/StructureDefinition/{p}" for p in profile]
        spec = PackSpec(pack=pack, title=title, standard_id=standard_id, standard_title=standard_title,
                        release=release, url=url, effective_from=day, profiles=urls,
                        source=source or f"{from_package.name} {release}")
        text, not_encoded = generate_pack(from_package, spec)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text, encoding="utf-8")
        written, problems = lint_paths([out_path])
    except ConfigurationError as exc:
        raise config_error(exc) from None
    if problems:
        raise config_error(ConfigurationError(problems))
    out.print(f"wrote {out_path}: {len(written[0].rules)} rules from {len(urls)} profiles; "
              f"{len(not_encoded)} constraint(s) not encoded (listed in the pack)", highlight=False)


@packs_app.command("list")
def packs_list(packs_dir: Annotated[list[Path] | None, typer.Option(
        "--packs-dir", help="extra rule-pack directory (repeatable)")] = None) -> None:
    """Describe the installed rule packs."""
    try:
        packs = Catalogue.default(packs_dir or ()).packs()
    except ConfigurationError as exc:
        raise config_error(exc) from None
    table = ListTable(title="rule packs")
    for col in ("pack", "version", "rules", "standards", "sha256"):
        table.add_column(col, no_wrap=col != "standards")
    for p in sorted(packs.values(), key=lambda p: p.id):
        table.add_row(p.id, p.version, str(len(p.rules)),
                      "; ".join(f"{s.id} {s.version}" for s in p.standards), p.sha256[:12])
    out.print(table)


@suites_app.command("list")
def suites_list() -> None:
    """Describe the installed suites."""
    catalogue = Catalogue.default()
    table = ListTable(title="suites")
    for col in ("suite", "version", "packs", "rules", "title"):
        table.add_column(col, no_wrap=col != "title")
    try:
        for name in sorted(catalogue.suite_paths()):
            s = catalogue.suite(name)
            table.add_row(s.id, s.version, str(len(s.packs)), str(len(catalogue.rules_for(s))), s.title)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    out.print(table)


@report_app.command("diff")
def report_diff(
    old: Annotated[Path, typer.Argument(help="earlier report.json (or its directory)")],
    new: Annotated[Path, typer.Argument(help="later report.json (or its directory)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the diff as JSON")] = False,
) -> None:
    """What changed between two runs; exit 1 when a rule newly fails."""
    try:
        before, after = _load_report(old), _load_report(new)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    d = diff_reports(before, after)
    if as_json:
        out.print_json(data=d.as_dict())
    else:
        for title, rows in (("newly failing", d.newly_failing), ("newly passing", d.newly_passing)):
            out.print(f"{title}: {len(rows)}")
            for row in rows:
                out.print(f"  {row['rule']} ({row['level']}) {row['was'] or 'new rule'} → {row['now']}: {row['title']}",
                          highlight=False, soft_wrap=True)
        out.print(f"findings added: {len(d.findings_added)}, removed: {len(d.findings_removed)}")
        for f in d.findings_added[:20]:
            out.print(f"  + {f['rule']} {f['location'] or ''} {f['message']}", highlight=False, soft_wrap=True)
        for f in d.findings_removed[:20]:
            out.print(f"  - {f['rule']} {f['location'] or ''} {f['message']}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAIL if d.regressed else EXIT_PASS)


@report_app.command("render")
def report_render(
    path: Annotated[Path, typer.Argument(help="a run's directory (or its report.json)")],
    formats: Annotated[str, typer.Option("--format", help="comma-separated: html, junit, sarif, csv, xlsx")] = "html",
    out_dir: Annotated[Path | None, typer.Option("--out", help="write here (default: beside report.json)")] = None,
) -> None:
    """Re-render reports from an existing report.json, which is left untouched (a signature stays valid).

    Renderings are not signed content: they are derived from report.json, so one can be made
    again at any time. Exit 0, or 2 for an unreadable report or an unknown format.
    """
    try:
        wanted = [f for f in parse_formats(formats) if f != "json"]
        source = path / "report.json" if path.is_dir() else path
        report = _load_report(source)
        target = out_dir or source.parent
        check_out_dir(target)
        for fmt in wanted:
            name, render = FORMATS[fmt]
            (target / name).write_bytes(render(report))
            out.print(f"wrote {target / name}", highlight=False, soft_wrap=True)
    except ConfigurationError as exc:
        raise config_error(exc) from None


def _load_report(path: Path) -> dict[str, Any]:
    file = path / "report.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{file}: cannot read a report: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != "care-assure/report/v1":
        raise ConfigurationError(f"{file}: not a care-assure report (schema care-assure/report/v1)")
    return data


@app.command()
def replay(
    counterexample: Annotated[Path, typer.Argument(help="a CE-nnn.json file from a run's evidence/")],
    api: Annotated[str | None, typer.Option("--api", help="base URL (default: the one in the file)",
                                            rich_help_panel=TARGET)] = None,
    token_env: TokenEnvOpt = None, oauth_token_url: OAuthUrlOpt = None, client_id: ClientIdOpt = None,
    client_secret_env: ClientSecretEnvOpt = None, scope: ScopeOpt = None, cert: CertOpt = None, key: KeyOpt = None,
    ca: CaOpt = None, connect_timeout: ConnectTimeoutOpt = DEFAULTS.connect_timeout,
    read_timeout: ReadTimeoutOpt = DEFAULTS.read_timeout, allow_insecure_local: AllowInsecureOpt = False,
) -> None:
    """Re-run a property's minimal counterexample, then delete what it created.

    Exit 0 when the failure no longer happens, 1 when it still does, 2 for a bad file or option.
    """
    from harness.properties.api import PROPERTIES  # noqa: PLC0415 - Hypothesis only for this command

    try:
        data = json.loads(counterexample.read_text(encoding="utf-8"))
        prop = PROPERTIES[data["property"]]
        client = TargetOptions.pick(locals(), api=api or data["base_url"]).client()
    except (OSError, ValueError, KeyError) as exc:
        raise config_error(ConfigurationError(f"{counterexample}: not a counterexample file ({exc})")) from None
    except ConfigurationError as exc:
        raise config_error(exc) from None
    from harness.properties.sandbox import clean_up  # noqa: PLC0415

    try:
        message = prop.check(client, data["example"])
    except ConnectionError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    finally:
        cleanup = clean_up(client)  # the sandbox is left as it was found
        out.print(f"replay {cleanup.describe()}", highlight=False, soft_wrap=True)
    requests = ", ".join(ex.describe() for ex in client.evidence.exchanges if ex.rule != "cleanup")
    if message:
        out.print(f"still fails ({data['rule']}, {data['property']}): {escape(message)}",
                  highlight=False, soft_wrap=True)
        out.print(f"requests: {escape(requests)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAIL)
    out.print(f"no longer fails ({data['rule']}, {data['property']}); requests: {escape(requests)}",
              highlight=False, soft_wrap=True)


@app.command("fuzz-export")
def fuzz_export_command(
    command: Annotated[str, typer.Argument(
        help="the supplier's import-then-export command, with {input} and {output} directories")],
    suite: Annotated[str, typer.Option("--suite", help="the suite each exported dataset must pass")] = "asl-dscr-core",
    examples: Annotated[int, typer.Option("--examples", min=1, max=100_000,
                                          help="how many generated datasets to round-trip")] = 10,
    seed: Annotated[int, typer.Option("--seed", min=0, help="seed of the generator (the same seed, the same "
                                                           "datasets)")] = 0,
    keep: Annotated[Path, typer.Option("--keep", help="where to write a failing dataset")] = Path(
        "reports/out/fuzz-counterexample"),
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=24 * 3600,
                                           help="seconds per command run")] = 60.0,
    shrink: Annotated[bool, typer.Option(
        "--shrink/--no-shrink", help="shrink a failure to a minimal dataset (slow with slow exporters)")] = True,
) -> None:
    """Generate datasets, round-trip them through your exporter, check nothing is lost."""
    from harness.properties.fuzz_export import fuzz_export  # noqa: PLC0415 - Hypothesis only here

    if "{input}" not in command or "{output}" not in command:
        err.print("[red]error:[/red] the command must contain {input} and {output}")
        raise typer.Exit(EXIT_CONFIG)
    with reporting(progress_reporter(quiet=False)):
        result = fuzz_export(command, suite=suite, examples=examples, seed=seed, keep=keep, timeout=timeout,
                             shrink=shrink)
    if result.message:
        out.print(f"round trip failed after {result.examples_run} example(s) (seed {seed}): "
                  f"{escape(result.message)}", highlight=False, soft_wrap=True)
        out.print(f"{'minimal ' if shrink else ''}dataset written to {result.counterexample}", highlight=False)
        raise typer.Exit(EXIT_FAIL)
    out.print(f"{result.examples_run} generated dataset(s) came back whole and conforming (seed {seed})")


@reference_app.command("serve")
def reference_serve(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port on 127.0.0.1 (0: any free port)")] = 8080,
    residents: Annotated[int, typer.Option("--residents", min=1, max=1_000_000,
                                           help="how many residents the sandbox holds")] = 12,
    defect: Annotated[list[str] | None, typer.Option("--defect", help=(
        "defect switch (repeatable). Export defects: " + ", ".join(EXPORT_DEFECTS) + ". API defects: "
        + ", ".join(API_DEFECTS) + "."))] = None,
    url_file: Annotated[Path | None, typer.Option("--url-file", help="write the base URL here once listening")] = None,
) -> None:
    """Serve the reference supplier's FHIR API on loopback (bearer token: reference-supplier-token).

    Runs until interrupted; exit 2 for an unknown defect or a port in use.
    """
    from fixtures.reference_server import ReferenceApi, ReferenceServer  # noqa: PLC0415 - only this command needs it

    try:
        server = ReferenceServer(ReferenceApi(residents, defects=defect or ()), port=port)
    except (ValueError, OSError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    out.print(f"reference supplier FHIR API at {server.url}", highlight=False)
    if url_file:
        url_file.write_text(server.url + "\n", encoding="utf-8")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@app.command()
def version() -> None:
    """Print the harness version."""
    out.print(f"care-assure {__version__}")


def main() -> None:
    app(prog_name="care-assure")


if __name__ == "__main__":
    main()
