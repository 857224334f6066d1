"""What the command-line modules share: consoles, exit codes, option parsing and target building."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from harness.engine import Target
from harness.errors import ConfigurationError
from harness.progress import LineReporter, Reporter
from harness.targets.options import BOUNDS, TargetOptions

EXIT_PASS, EXIT_FAIL, EXIT_CONFIG, EXIT_NOT_EVALUATED = 0, 1, 2, 3
out = Console()
err = Console(stderr=True)


def fit_consoles() -> None:
    """Take COLUMNS (and NO_COLOR) as they are when a command starts, not when the module was imported."""
    columns = os.environ.get("COLUMNS", "")
    for console in (out, err):
        console.no_color = bool(os.environ.get("NO_COLOR")) or console.no_color
        if columns.isdigit() and int(columns) > 0:
            console.width = int(columns)


WIDE = 100  # below this many columns a table would wrap its cells word by word: a list reads better


class ListTable:
    """A rich Table where the terminal is wide enough for one, else one list entry per row.

    Used like ``rich.table.Table`` (``add_column``, ``add_row``, ``console.print(table)``): the
    first cell heads each entry and the others follow as "column: value", wrapped under it.
    """

    def __init__(self, *columns: str, title: str | None = None) -> None:
        self.columns: list[tuple[str, dict[str, Any]]] = [(c, {}) for c in columns]
        self.rows: list[tuple[str, ...]] = []
        self.title = title

    def add_column(self, name: str, **options: Any) -> None:
        self.columns.append((name, options))

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(cells))

    def __rich_console__(self, console: Console, options: Any) -> Any:
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        if options.max_width >= WIDE:
            table = Table(title=self.title)
            for name, column_options in self.columns:
                table.add_column(name, **column_options)
            for row in self.rows:
                table.add_row(*row)
            yield table
            return
        if self.title:
            yield Text(self.title, style="bold")
        names = [name for name, _ in self.columns]
        for row in self.rows:
            detail = "; ".join(f"{n}: {Text.from_markup(v).plain}" for n, v in zip(names[1:], row[1:], strict=False)
                               if v)
            head, under = _entry(Text.from_markup(row[0]).plain, detail, options.max_width, 0)
            yield Text(head)
            if under:
                yield Text(under, style="dim")


def print_item(head: str, detail: str = "", *, indent: int = 2, console: Console | None = None) -> None:
    """One entry of a list: the head line, then the detail wrapped under it with a hanging indent.

    Lists read well at 80 columns where a table would wrap every cell one word per line.
    """
    console = console or out
    first, under = _entry(head, detail, console.width, indent)
    console.print(first, markup=False, highlight=False, soft_wrap=True)
    if under:
        console.print(under, markup=False, highlight=False, soft_wrap=True, style="dim")


def _entry(head: str, detail: str, width: int, indent: int) -> tuple[str, str]:
    """A list entry's two parts, wrapped to ``width``: the head, and the detail under it (indented)."""
    width, inner = max(width, 40), " " * (indent + 4)
    return (textwrap.fill(head, width, initial_indent=" " * indent, subsequent_indent=inner),
            textwrap.fill(detail, width, initial_indent=inner, subsequent_indent=inner) if detail else "")


class BarReporter:
    """On a terminal: a live bar per long job (on stderr), gone when the job ends, with a line saying how."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn  # noqa: PLC0415

        self.console = console
        self.bar = Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)
        self.tasks: dict[str, Any] = {}
        self.lines = LineReporter(lambda text: console.print(text, highlight=False, soft_wrap=True))

    def started(self, name: str, total: int | None, unit: str) -> None:
        if not self.tasks:
            self.bar.start()
        self.tasks[name] = self.bar.add_task(f"{name} ({unit})", total=total)
        self.lines.started(name, total, unit)

    def advanced(self, name: str, done: int) -> None:
        if name in self.tasks:
            self.bar.update(self.tasks[name], completed=done)

    def finished(self, name: str, done: int, seconds: float, note: str) -> None:
        if name in self.tasks:
            self.bar.remove_task(self.tasks.pop(name))
        if not self.tasks:
            self.bar.stop()
        self.lines.finished(name, done, seconds, note)


def progress_reporter(quiet: bool) -> Reporter | None:
    """How long jobs show progress: a bar on a terminal, a line per job in a log, nothing when quiet."""
    if quiet:
        return None
    if err.is_terminal:
        return BarReporter(err)
    return LineReporter(lambda text: err.print(text, highlight=False, soft_wrap=True))


def config_error(exc: ConfigurationError) -> typer.Exit:
    for problem in exc.problems:
        err.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_CONFIG)


def parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a date in YYYY-MM-DD form") from None


def check_out_dir(path: Path) -> None:
    """The report directory can be written, checked before a run rather than after it."""
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"--out {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".care-assure-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(f"--out {path} cannot be written: {exc.strerror or exc}") from None


TARGET, AUTH, OUTPUT, REGISTRY = "Target", "Authentication", "Output", "Registry"

# The target options, defined once for every command that reaches a supplier (run, round run, replay).
ExportOpt = Annotated[list[Path] | None, typer.Option(
    "--export", help="export file, directory or zip (NDJSON, Bundle JSON, FHIR XML); repeatable",
    rich_help_panel=TARGET)]
CsvMapOpt = Annotated[list[Path] | None, typer.Option(
    "--csv-map", help="a CSV data dictionary (YAML) for the export's CSV files, tried before the shipped resident "
                      "list and MAR chart mappings; repeatable", rich_help_panel=TARGET)]
ApiOpt = Annotated[str | None, typer.Option("--api", help="base URL of the supplier's FHIR R4 API",
                                            rich_help_panel=TARGET)]
ConnectTimeoutOpt = Annotated[float, typer.Option(
    "--connect-timeout", min=BOUNDS["connect_timeout"][0], max=BOUNDS["connect_timeout"][1],
    help="seconds to wait for a connection", rich_help_panel=TARGET)]
ReadTimeoutOpt = Annotated[float, typer.Option(
    "--read-timeout", min=BOUNDS["read_timeout"][0], max=BOUNDS["read_timeout"][1],
    help="seconds to wait for each response", rich_help_panel=TARGET)]
PageLimitOpt = Annotated[int, typer.Option(
    "--page-limit", min=int(BOUNDS["page_limit"][0]), max=int(BOUNDS["page_limit"][1]),
    help="most search pages read per resource type", rich_help_panel=TARGET)]
AllowInsecureOpt = Annotated[bool, typer.Option(
    "--allow-insecure-local", help="allow http:// and private or loopback addresses (local sandboxes only)",
    rich_help_panel=TARGET)]
EvidenceOpt = Annotated[str, typer.Option(
    "--evidence", help="redacted (default) or full: keep patient data in the stored exchanges",
    rich_help_panel=OUTPUT)]
TokenEnvOpt = Annotated[str | None, typer.Option(
    "--token-env", help="name of the environment variable holding the bearer token", rich_help_panel=AUTH)]
OAuthUrlOpt = Annotated[str | None, typer.Option(
    "--oauth-token-url", help="OAuth2 token endpoint (client-credentials grant)", rich_help_panel=AUTH)]
ClientIdOpt = Annotated[str | None, typer.Option("--client-id", help="OAuth2 client id", rich_help_panel=AUTH)]
ClientSecretEnvOpt = Annotated[str | None, typer.Option(
    "--client-secret-env", help="name of the environment variable holding the OAuth2 client secret",
    rich_help_panel=AUTH)]
ScopeOpt = Annotated[str | None, typer.Option("--scope", help="OAuth2 scopes, space-separated",
                                              rich_help_panel=AUTH)]
CertOpt = Annotated[str | None, typer.Option("--cert", help="client certificate (PEM) for mutual TLS",
                                             rich_help_panel=AUTH)]
KeyOpt = Annotated[str | None, typer.Option("--key", help="private key (PEM) of the client certificate",
                                            rich_help_panel=AUTH)]
CaOpt = Annotated[str | None, typer.Option("--ca", help="CA bundle (PEM) to trust for the server",
                                           rich_help_panel=AUTH)]
DEFAULTS = TargetOptions()


def build_target(values: dict[str, Any], engine: str = "local", spark_master: str | None = None,
                 **overrides: Any) -> Target:
    """The target a command's options name (its parameters, as ``locals()``): checked, then built."""
    options = TargetOptions.pick(values, **overrides)
    if engine == "local":
        target: Target = options.build()
        return target
    if engine != "spark":
        raise ConfigurationError(f"--engine must be 'local' or 'spark', not '{engine}'")
    options.check()
    if options.api:
        raise ConfigurationError("--engine spark reads exports; an API target is read in one process")
    from harness.spark_engine import SparkExport  # noqa: PLC0415 - only for Spark runs

    spark: Target = SparkExport(options.export, options.csv_map, spark_master)
    return spark
