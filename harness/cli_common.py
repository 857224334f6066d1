"""What the command-line modules share: consoles, exit codes, option parsing and target building."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from harness.engine import Target
from harness.errors import ConfigurationError
from harness.evidence import EvidenceStore, Redactor
from harness.targets.api import ApiTarget
from harness.targets.export import ExportTarget
from harness.targets.http_client import ClientConfig, FhirClient

EXIT_PASS, EXIT_FAIL, EXIT_CONFIG, EXIT_NOT_EVALUATED = 0, 1, 2, 3
out = Console()
err = Console(stderr=True)


def print_item(head: str, detail: str = "", *, indent: int = 2, console: Console | None = None) -> None:
    """One entry of a list: the head line, then the detail wrapped under it with a hanging indent.

    Lists read well at 80 columns where a table would wrap every cell one word per line.
    """
    console = console or out
    width = max(console.width, 40)
    console.print(textwrap.fill(head, width, initial_indent=" " * indent, subsequent_indent=" " * (indent + 4)),
                  markup=False, highlight=False, soft_wrap=True)
    if detail:
        console.print(textwrap.fill(detail, width, initial_indent=" " * (indent + 4),
                                    subsequent_indent=" " * (indent + 4)),
                      markup=False, highlight=False, soft_wrap=True, style="dim")


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


def make_target(export: list[Path] | None, api: ClientConfig | None, *, evidence: str = "redacted",
                allow_writes: bool = False, overrides: dict[str, int | None] | None = None) -> Target:
    """The export or API target the options name (exactly one of them)."""
    if bool(export) == bool(api):
        raise ConfigurationError("give either --export or --api")
    if evidence not in ("redacted", "full"):
        raise ConfigurationError(f"--evidence must be 'redacted' or 'full', not '{evidence}'")
    if isinstance(api, ClientConfig):
        return ApiTarget(FhirClient(api, EvidenceStore(Redactor(full=evidence == "full"))),
                         allow_writes=allow_writes, property_overrides=overrides or {})
    return ExportTarget(export or [])


