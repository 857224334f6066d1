"""Resource-level check kinds driven by FHIRPath: an invariant, and a cardinality."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.checks.registry import RuleContext, register
from harness.fhirpath import compile_path
from harness.fhirpath_schema import Schema, count_schema, path_of, true_or_empty_schema, true_schema
from harness.results import Issue

ResourceCheck = Callable[[dict[str, Any], list[Any] | None], Iterable[Issue]]


def _fhirpath_screen(params: dict[str, Any], select: str | None) -> Schema | None:
    """The expression is natively true (or empty, where empty passes)."""
    if params.get("empty", "fail") == "pass":
        return true_or_empty_schema(params["expression"])
    return true_schema(params["expression"])


def _cardinality_screen(params: dict[str, Any], select: str | None) -> Schema | None:
    """The select natively yields a number of values within the bounds (said for none and one)."""
    nav = path_of(select) if select else None
    high = params.get("max", "*")
    return None if nav is None else count_schema(nav, params.get("min", 0), None if high == "*" else high)


@register("fhirpath", scope="resource", params={
    "expression": {"type": "string", "minLength": 1},
    "message": {"type": "string"},
    "empty": {"enum": ["pass", "fail"]},
}, screen=_fhirpath_screen)
def fhirpath(params: dict[str, Any], ctx: RuleContext) -> ResourceCheck:
    """A FHIRPath expression evaluates to true on each subject resource."""
    expr = compile_path(params["expression"])
    message = params.get("message") or f"'{params['expression']}' is not true"
    empty_passes = params.get("empty", "fail") == "pass"

    def check(resource: dict[str, Any], values: list[Any] | None) -> Iterable[Issue]:
        result = expr(resource)
        if not result:
            if not empty_passes:
                yield Issue(f"{message} (evaluated to empty)", params["expression"])
            return
        if len(result) != 1 or not isinstance(result[0], bool):
            raise ValueError(f"'{params['expression']}' must give one boolean, gave {result[:3]!r}")
        if not result[0]:
            yield Issue(message, params["expression"])

    return check


@register("cardinality", scope="resource", needs_select=True, params={
    "min": {"type": "integer", "minimum": 0},
    "max": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "*"}]},
}, screen=_cardinality_screen)
def cardinality(params: dict[str, Any], ctx: RuleContext) -> ResourceCheck:
    """The number of values the rule's select yields lies between min and max."""
    low = params.get("min", 0)
    high = params.get("max", "*")

    def check(resource: dict[str, Any], values: list[Any] | None) -> Iterable[Issue]:
        n = len(values or [])
        if n < low:
            yield Issue(f"found {n}, at least {low} required", code="required")
        elif high != "*" and n > high:
            yield Issue(f"found {n}, at most {high} allowed", code="structure")

    return check
