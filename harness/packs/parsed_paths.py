"""The parsed trees of the bundled packs' FHIRPath expressions, as a committed table.

Parsing FHIRPath goes through fhirpathpy's ANTLR grammar, which is slow to load and to run (a
run over a bundled suite spent ~0.15 s on it before reading the first resource). This generator
lints every bundled pack and builds every bundled suite's plans while recording each expression
parsed, then writes each one's tree to ``harness/fhirpath_parsed.json``; ``harness.fhirpath``
reads the table by exact expression text and parses anything else as before. A stale table can
only miss an expression (it is then parsed), never give one another's tree; a test re-parses
every entry and fails when a bundled expression is missing.

    python -m harness.packs.parsed_paths        (part of ``make tables``)
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from harness import fhirpath


@contextmanager
def _recording() -> Iterator[set[str]]:
    """Every expression ``harness.fhirpath`` parses meanwhile, compiled afresh (nothing from its caches)."""
    seen: set[str] = set()
    original = fhirpath.parse_strict

    def record(expression: str) -> dict[str, Any]:
        seen.add(expression)
        return fhirpath.parse_with_antlr(expression)

    fhirpath.compile_path.cache_clear()
    fhirpath.parse_strict = record
    try:
        yield seen
    finally:
        fhirpath.parse_strict = original
        fhirpath.compile_path.cache_clear()


def bundled_expressions() -> set[str]:
    """The expressions the bundled packs and suites compile (lint of every pack, every suite's plans) and
    those of the R4 constraints the validator evaluates as FHIRPath (every type's, compiled on first use:
    ~4 ms each through the parser, in every process and every --jobs worker)."""
    from harness.fhir.invariants import compile_invariant  # noqa: PLC0415 - the generator only
    from harness.fhir.model import r4  # noqa: PLC0415
    from harness.packs.loader import lint_paths  # noqa: PLC0415
    from harness.paths import standards_dir  # noqa: PLC0415
    from harness.plan import build_plan  # noqa: PLC0415
    from harness.suites import Catalogue  # noqa: PLC0415

    compile_invariant.cache_clear()
    with _recording() as seen:
        lint_paths([standards_dir()])
        catalogue = Catalogue.default()
        for name in catalogue.suite_paths():
            suite = catalogue.suite(name)
            for kind in ("export", "api"):
                for as_of in (dt.date(2026, 1, 1), dt.date(2030, 1, 1)):
                    build_plan(suite, catalogue, as_of, kind)
        for key, (severity, human, expression, *_rest) in sorted(r4().constraints.items()):
            if expression:
                compile_invariant(key, severity, human, expression, "")
    compile_invariant.cache_clear()
    return seen


def build() -> dict[str, Any]:
    """Each expression's tree; one that does not parse is left out (parsed, and refused, at run time)."""
    table = {}
    for expression in sorted(bundled_expressions()):
        try:
            table[expression] = fhirpath.parse_with_antlr(expression)
        except fhirpath.FHIRPathSyntaxError:
            continue
    return table


def main() -> int:
    table = build()
    fhirpath.PARSED_TABLE.write_bytes(orjson.dumps(table, option=orjson.OPT_SORT_KEYS) + b"\n")
    print(f"{fhirpath.PARSED_TABLE}: {len(table)} expressions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
