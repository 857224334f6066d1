"""Value-level check kinds: each judges one selected value at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re2

from harness.checks.registry import RuleContext, register
from harness.identifiers import (
    SNOMED_SYSTEM,
    is_repeated_digits,
    is_test_range,
    nhs_number_problem,
    ods_code_problem,
    sctid_problem,
)
from harness.results import Issue
from harness.wording import json_kind

ValueCheck = Callable[[Any], Issue | None]

_NHS_CHECKS = ["format", "checksum", "repeated-digits", "not-test-range"]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def linear_regex(expression: str) -> Any:
    """A pattern compiled with RE2, which runs in linear time on any input; what RE2 refuses
    (backreferences, lookaround) raises ValueError, so the rule cannot hang on a hostile value."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(expression, options)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"regex '{expression}' needs a backtracking engine ({detail}); "
                         "rewrite it without backreferences or lookaround") from None


def _not_text(value: Any) -> Issue:
    return Issue(f"expected a string, found {json_kind(value)}", code="structure")


@register("pattern", scope="value", needs_select=True, params={
    "regex": {"type": "string", "minLength": 1},
    "message": {"type": "string"},
    "show_value": {"type": "boolean", "description": "quote the value (never for patient data)"},
})
def pattern(params: dict[str, Any], ctx: RuleContext) -> ValueCheck:
    """Each selected string matches a regular expression in full (RE2: linear time, no backtracking)."""
    regex = linear_regex(params["regex"])
    message = params.get("message") or f"value does not match {params['regex']}"
    show = params.get("show_value", False)

    seen: dict[str, bool] = {}  # RE2's binding costs ~5 µs a call; exports repeat short values a lot

    def check(value: Any) -> Issue | None:
        text = _text(value)
        if text is None:
            return _not_text(value)
        matched = seen.get(text)
        if matched is None:
            matched = regex.fullmatch(text) is not None
            if len(text) <= 256:
                if len(seen) >= 8192:
                    seen.clear()
                seen[text] = matched
        if matched:
            return None
        return Issue(f"'{text}': {message}" if show else message)

    return check


@register("nhs-number", scope="value", needs_select=True, params={
    "checks": {"type": "array", "minItems": 1, "uniqueItems": True,
               "items": {"enum": _NHS_CHECKS}},
})
def nhs_number(params: dict[str, Any], ctx: RuleContext) -> ValueCheck:
    """Each selected value is a valid NHS number (ten digits, modulus 11, optional policy checks).

    Messages never quote the number: it is patient data.
    """
    wanted = set(params.get("checks", ["format", "checksum"]))

    def check(value: Any) -> Issue | None:
        text = _text(value)
        if text is None:
            return _not_text(value)
        problem = nhs_number_problem(text)
        if problem == "format" and "format" in wanted:
            return Issue("NHS number is not exactly ten digits with no spaces or separators")
        if problem and problem != "format" and "checksum" in wanted:
            reason = "no valid number has these first nine digits" if "10" in problem else \
                "the check digit does not match"
            return Issue(f"NHS number fails the modulus 11 check: {reason}")
        if problem is None and "repeated-digits" in wanted and is_repeated_digits(text):
            return Issue("NHS number repeats one digit ten times; such numbers are never issued")
        if problem is None and "not-test-range" in wanted and is_test_range(text):
            return Issue("NHS number is in the 999 test range, so this is test data, not a patient",
                         code="business-rule")
        return None

    return check


@register("ods-code", scope="value", needs_select=True)
def ods_code(params: dict[str, Any], ctx: RuleContext) -> ValueCheck:
    """Each selected value is a well-formed ODS organisation or site code."""
    def check(value: Any) -> Issue | None:
        text = _text(value)
        if text is None:
            return _not_text(value)
        problem = ods_code_problem(text)
        return Issue(f"ODS code '{text}': {problem}") if problem else None

    return check


@register("sctid", scope="value", needs_select=True, params={
    "partitions": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": ["concept", "description", "relationship"]}},
    "system": {"type": "string", "minLength": 1,
               "description": "the system whose Codings are checked (default SNOMED CT)"},
})
def sctid(params: dict[str, Any], ctx: RuleContext) -> ValueCheck:
    """Each SNOMED CT id (a string, or a Coding in the SNOMED system) is well formed.

    Verhoeff check digit, length, no leading zero, and a partition of the allowed kind.
    """
    allowed = frozenset(params.get("partitions", ["concept"]))
    system = params.get("system", SNOMED_SYSTEM)

    def check(value: Any) -> Issue | None:
        if isinstance(value, dict):
            if value.get("system") != system:
                return None
            value = value.get("code")
            if value is None:
                return Issue(f"{system} coding has no code", code="required")
        text = _text(value)
        if text is None:
            return _not_text(value)
        problem = sctid_problem(text, allowed)
        return Issue(f"SNOMED CT id '{text}': {problem}", code="code-invalid") if problem else None

    return check
