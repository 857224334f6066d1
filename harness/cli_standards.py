"""Commands about the standards themselves: pack and suite diffs, and the coverage table."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli_common import ListTable, config_error, out, parse_date, print_item
from harness.errors import ConfigurationError
from harness.packs.coverage import render_coverage
from harness.packs.diff import RuleChange, diff_rules
from harness.packs.loader import lint_paths
from harness.suites import Catalogue, schedule

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _print(changes: list[RuleChange], as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps([c.as_dict() for c in changes]))
        return
    table = ListTable("change", "rule", "level", "from", "details", title=title)
    for c in changes:
        table.add_row(c.change, c.rule, c.level, c.effective_from, escape("; ".join(c.details) or c.title))
    out.print(table)
    out.print(f"{sum(c.change == 'added' for c in changes)} added, {sum(c.change == 'removed' for c in changes)} "
              f"removed, {sum(c.change == 'changed' for c in changes)} changed", highlight=False)


def packs_diff(
    old: Annotated[Path, typer.Argument(help="the earlier pack file or directory of packs")],
    new: Annotated[Path, typer.Argument(help="the later pack file or directory of packs")],
    as_json: JsonOpt = False,
) -> None:
    """Rules added, removed, or changed (level, dates, check, clause) between two versions of packs."""
    try:
        sides = []
        for path in (old, new):
            if not path.exists():
                raise ConfigurationError(f"{path}: no such pack file or directory")
            packs, problems = lint_paths([path])
            if problems:
                raise ConfigurationError(problems)
            sides.append([r for p in packs for r in p.rules])
    except ConfigurationError as exc:
        raise config_error(exc) from None
    _print(diff_rules(sides[0], sides[1]), as_json, f"{old} → {new}")


def suites_diff(
    suite_a: Annotated[str, typer.Argument(help="suite id or file")],
    suite_b: Annotated[str | None, typer.Argument(help="second suite (default: the first again)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="date for the first suite (default today)")] = None,
    to: Annotated[str | None, typer.Option("--to", help="date for the second suite (default --as-of)")] = None,
    packs_dir: Annotated[list[Path] | None, typer.Option("--packs-dir", help="extra rule-pack directory")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What suite B requires on --to that suite A did not on --as-of: rules added, removed, re-levelled."""
    try:
        first = parse_date(as_of) or dt.date.today()
        second = parse_date(to) or first
        catalogue = Catalogue.default(packs_dir or ())
        a = catalogue.suite(suite_a)
        b = catalogue.suite(suite_b or suite_a)
        left = [r for r in catalogue.rules_for(a) if r.in_force(first)]
        right = [r for r in catalogue.rules_for(b) if r.in_force(second)]
    except ConfigurationError as exc:
        raise config_error(exc) from None
    _print(diff_rules(left, right), as_json, f"{a.id} {a.version} on {first} → {b.id} {b.version} on {second}")


def suites_show(
    suite: Annotated[str, typer.Argument(help="suite id or file")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="the date, YYYY-MM-DD (default today)")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    packs_dir: Annotated[list[Path] | None, typer.Option("--packs-dir", help="extra rule-pack directory")] = None,
) -> None:
    """The rules a suite requires on a date (level, standard, clause, since), those coming later, and retired.

    Exit 0, or 2 for an unknown suite, date or format.
    """
    if output_format not in ("text", "json"):
        raise config_error(ConfigurationError(f"--format must be text or json, not '{output_format}'"))
    try:
        day = parse_date(as_of) or dt.date.today()
        catalogue = Catalogue.default(packs_dir or ())
        found = schedule(catalogue, catalogue.suite(suite), day)
    except ConfigurationError as exc:
        raise config_error(exc) from None
    if output_format == "json":
        out.print_json(json.dumps(found.as_dict()))
        return
    s = found.suite
    out.print(f"{s.id} {s.version}: {escape(s.title)}, as of {day}", highlight=False)
    for title, rules, when in (("in force", found.in_force, "since"), ("coming", found.coming, "from"),
                               ("retired", found.retired, "until")):
        out.print(f"\n{title} ({len(rules)})", highlight=False, style="bold")
        for r in rules:
            date = r.effective_until if when == "until" else r.effective_from
            print_item(f"{r.level.value:<6} {r.id}  {r.title}",
                       f"{when} {date} · {r.standard.title} {r.standard.version}: {r.clause}")


def csv_lint(
    paths: Annotated[list[Path] | None, typer.Argument(help="CSV data dictionary files (default: the shipped ones)")]
    = None,
) -> None:
    """Check CSV data dictionaries against their schema; exit 2 naming file and line of each problem."""
    from harness.targets.csv_export import MAPS_DIR, load_map  # noqa: PLC0415

    problems, loaded = [], 0
    for path in paths or sorted(MAPS_DIR.glob("*.yaml")):
        try:
            load_map(path)
            loaded += 1
        except ConfigurationError as exc:
            problems.extend(exc.problems)
    for problem in problems:
        out.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
    out.print(f"{loaded} mapping(s) valid, {len(problems)} problem(s)", highlight=False)
    raise typer.Exit(2 if problems else 0)


def packs_coverage(
    out_path: Annotated[Path | None, typer.Option("--out", help="write here (default: print)")] = None,
) -> None:
    """The coverage table: each standard, its clauses, the rules encoding them, and what is left out."""
    try:
        text = render_coverage(Catalogue.default())
    except ConfigurationError as exc:
        raise config_error(exc) from None
    if out_path is None:
        out.print(text, markup=False, highlight=False)
    else:
        out_path.write_text(text, encoding="utf-8")
        out.print(f"wrote {out_path}", highlight=False)


def register_standards_commands(packs_app: typer.Typer, suites_app: typer.Typer) -> None:
    packs_app.command("diff")(packs_diff)
    packs_app.command("coverage")(packs_coverage)
    suites_app.command("diff")(suites_diff)
    suites_app.command("show")(suites_show)
    packs_app.command("lint-csv-map")(csv_lint)
