"""FHIRPath: the official R4 suite through our compiler, and the native path against fhirpathpy.

Cases fhirpathpy does not pass are listed in ``data/fhirpath-r4-gaps.txt`` and run as strict
xfails; cases that read the clock are skipped. Wherever our native fast path accepts an
expression, its result must equal fhirpathpy's on the same input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models

from harness.fhirpath import CompiledPath, FHIRPathSyntaxError, _Fallback, compile_path
from tests.fhirpath_cases import Case, cases, load_input, matches

GAPS = {line.strip() for line in (Path(__file__).parent / "data" / "fhirpath-r4-gaps.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")}
CASES = cases()
CLOCK = ("now()", "today()", "timeOfDay()")


def _params() -> list[Any]:
    out = []
    for i, case in enumerate(CASES):
        marks: list[Any] = []
        if any(t in case.expression for t in CLOCK):
            marks.append(pytest.mark.skip(reason="depends on the clock at run time"))
        elif f"{i:03d}-{case.name}" in GAPS:
            marks.append(pytest.mark.xfail(strict=True, reason="fhirpathpy does not pass this case"))
        out.append(pytest.param(case, id=f"{i:03d}-{case.name}", marks=marks))
    return out


def test_suite_is_complete() -> None:
    assert len(CASES) == 935
    assert len(GAPS) < 200  # most of the suite is handled


@pytest.mark.parametrize("case", _params())
def test_official_r4_case(case: Case) -> None:
    resource = load_input(case.inputfile)
    if case.invalid:
        with pytest.raises((FHIRPathSyntaxError, Exception)):
            CompiledPath(case.expression)(resource)
        return
    result = CompiledPath(case.expression)(resource)
    assert matches(case, result), f"{case.expression} gave {result!r}, expected {case.outputs!r}"


def _native_cases() -> list[Any]:
    out = []
    for i, case in enumerate(CASES):
        try:
            compiled = CompiledPath(case.expression)
        except FHIRPathSyntaxError:
            continue
        if compiled.native:
            out.append(pytest.param(case, id=f"{i:03d}-{case.name}"))
    return out


@pytest.mark.parametrize("case", _native_cases())
def test_native_path_agrees_with_fhirpathpy(case: Case) -> None:
    resource = load_input(case.inputfile)
    try:
        expected: Any = list(fp_compile(case.expression, models["r4"])(resource))
    except Exception as exc:  # noqa: BLE001 - we compare error-ness, whatever the type
        expected = type(exc)
    try:
        got: Any = CompiledPath(case.expression)(resource)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    if isinstance(expected, type):
        assert isinstance(got, type), f"fhirpathpy raised {expected.__name__}, native gave {got!r}"
    elif got != expected:  # only where fhirpathpy itself is wrong: the official answer decides
        assert not case.invalid and not isinstance(got, type) and matches(case, got), (got, expected)


def test_native_subset_covers_rule_shapes() -> None:
    for expr in ("identifier.where(system = 'x').value", "active.empty() or active = true",
                 "status = 'not-done' implies statusReason.exists()", "code.coding.where(system = 'y')",
                 "medication.coding.system", "Patient.name.given.first()"):
        assert compile_path(expr).native, expr


def test_syntax_error_is_reported() -> None:
    with pytest.raises(FHIRPathSyntaxError, match="does not"):
        CompiledPath("name.where(")


def test_the_parsed_table_holds_every_bundled_expression_and_only_true_parses() -> None:
    """harness/fhirpath_parsed.json (``make tables``) lets a run skip the ANTLR parser; it must be exact."""
    from harness.fhirpath import PARSED_TABLE, parse_with_antlr
    from harness.packs.parsed_paths import bundled_expressions

    table = orjson.loads(PARSED_TABLE.read_bytes())
    wrong = [e for e, tree in table.items() if tree != parse_with_antlr(e)]
    assert not wrong, f"entries that are not what the parser gives: {wrong[:3]}"
    missing = sorted(bundled_expressions() - set(table))
    assert not missing, f"bundled expressions missing from {PARSED_TABLE.name} (run `make tables`): {missing[:5]}"


def test_a_run_of_a_bundled_suite_loads_neither_the_fhirpath_parser_nor_pydantic(tmp_path: Any) -> None:
    """Start-up: the parser (ANTLR), typer's pydantic coercion and schema checks of files already checked
    cost ~0.3 s before the first resource is read. The first run fills the lint cache; the next is measured."""
    import os
    import subprocess
    import sys

    code = ("import sys, datetime as dt\nimport harness.cli\nfrom harness.runner import plan_for\n"
            "plan_for('asl-dscr-core', 'export', as_of=dt.date(2026, 11, 1))\n"
            "print(sorted(m for m in ('antlr4', 'pydantic', 'jsonschema', 'sqlalchemy', 'hypothesis', 'jinja2',"
            " 'openpyxl') if m in sys.modules))")
    env = {**os.environ, "CARE_ASSURE_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert "jsonschema" in first.stdout  # nothing cached yet: every pack and the suite were checked
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == "[]", done.stdout


def _outcome(fn: Any, resource: Any) -> Any:
    try:
        return fn([resource], (resource, resource, resource))
    except _Fallback:
        return "handed to fhirpathpy"


def test_generated_code_gives_what_the_closures_give() -> None:
    """harness.fhirpath_gen writes each native expression as code: on every official case input and the
    reference supplier's resources it gives the closures' answer, or hands over to fhirpathpy where they do."""
    from fixtures.export_generator import Generator
    from harness.fhirpath import PARSED_TABLE, _compile, _Unsupported, parse_with_antlr
    from harness.fhirpath_gen import generate

    expressions = {case.expression for case in CASES} | set(orjson.loads(PARSED_TABLE.read_bytes()))
    resources = [load_input(name) for name in sorted({c.inputfile for c in CASES if c.inputfile})]
    resources += list(Generator(4, seed=3).resources())
    compared = 0
    for expression in sorted(expressions):
        try:
            ast = parse_with_antlr(expression)
            closures = _compile(ast)
        except (FHIRPathSyntaxError, _Unsupported):
            continue
        generated = generate(ast, expression)
        for resource in resources:
            assert _outcome(generated, resource) == _outcome(closures, resource), (expression, resource.get("id"))
            compared += 1
    assert compared > 5000
