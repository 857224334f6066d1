r"""A fast screen for the must-support rules: a JSON Schema, run by jsonschema-rs, that clears a resource
none of whose must-support values is empty or a placeholder.

A must-support rule walks each of its element paths and reports every value there that
:func:`harness.checks.profile.is_empty` calls empty. Almost every resource has none, so the rule
first asks one compiled schema whether that is so, and walks only when it cannot say yes. The
schema follows each path as the walk does (arrays flattened, slices by field value, ``value[x]``
over every key that starts with ``value`` — more keys than the walk takes, never fewer) and, at
the end, requires a value that is not empty: not null; a string with something besides Python's
whitespace that, for an element that is not a code, is not a placeholder word (matched without
regard to case: Rust's case folding covers every character Python's ``lower()`` maps to a letter
of those words — a test checks each code point); an object with some such value inside; an array
with one. It is never more permissive than the walk (tests: mutations of corpus resources), so a
resource it clears is one the walk would find nothing in, and every finding is the walk's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from harness.fhir.accept import NOT_SPACE, SPACE

Screen = Callable[[Any], bool]


def _placeholder_pattern(placeholders: frozenset[str]) -> str:
    words = "|".join(re.escape(w).replace("\\ ", " ") for w in sorted(placeholders))
    return f"^{SPACE}*(?i:{words}){SPACE}*$"


def screen_schema(elements: list[tuple[list[dict[str, Any]], bool]], placeholders: frozenset[str]) -> dict[str, Any]:
    """The schema of 'no value at the end of any path is empty': (path, coded) for each element."""
    def not_empty(string: dict[str, Any]) -> dict[str, Any]:
        """A value that is not empty, given what a string that is not empty is."""
        return {"anyOf": [
            {"type": ["number", "boolean"]},
            {"type": "string", **string},
            {"type": "object", "not": {"additionalProperties": {"not": {"$ref": "#/$defs/deep"}}}},
            {"type": "array", "contains": {"$ref": "#/$defs/deep"}},
        ]}

    defs = {
        # at any depth inside an element that is not a code: no blank string and no placeholder
        "deep": not_empty({"pattern": NOT_SPACE, "not": {"pattern": _placeholder_pattern(placeholders)}}),
        # the value of a code: only a blank one is empty (the parts of an object are as 'deep')
        "code": not_empty({"pattern": NOT_SPACE}),
    }
    every = [follow(steps, {"$ref": "#/$defs/code" if coded else "#/$defs/deep"}) for steps, coded in elements]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": every, "$defs": defs}


def follow(steps: list[dict[str, Any]], end: dict[str, Any]) -> dict[str, Any]:
    """The schema applying ``end`` to every value the steps reach from a node (as compile_step walks)."""
    inner = end
    for step in reversed(steps):
        wanted = step.get("slice", {})
        each = inner
        if wanted:
            match = {"type": "object", "required": sorted(wanted),
                     "properties": {k: {"const": v} for k, v in wanted.items()}}
            each = {"if": match, "then": inner}
        items = {"if": {"type": "array"}, "then": {"items": each}, "else": each}
        name: str = step["name"]
        if name.endswith("[x]"):
            inner = {"patternProperties": {f"^{re.escape(name[:-3])}.": items}}
        else:
            inner = {"properties": {name: items}}
    return inner


def step_count_schema(step: dict[str, Any], low: int, high: int | None) -> Any:
    """The schema of 'the step reaches between ``low`` and ``high`` values from a node' (as compile_step
    counts: a null counts, a slice counts the objects whose fields match); None where it does not say."""
    if low == 0 and high is None:
        return True
    wanted = step.get("slice", {})
    match: Any = {"type": "object", "required": sorted(wanted),
                  "properties": {k: {"const": v} for k, v in wanted.items()}} if wanted else True
    one_fits = low <= 1 and (high is None or high >= 1)

    def counted(lo: int) -> dict[str, Any]:
        """On one key's value: its number of values counted lies in [lo, high]."""
        bound = {} if high is None else ({"maxContains": high} if wanted else {"maxItems": high})
        array = {"type": "array", **({"contains": match, "minContains": lo} if wanted else {"minItems": lo}), **bound}
        fits = lo <= 1 and (high is None or high >= 1)
        single = {"anyOf": [{"allOf": [match, fits]}, {"allOf": [{"not": match}, lo == 0]}]} if wanted else fits
        return {"if": {"type": "array"}, "then": array, "else": single}

    name: str = step["name"]
    if not name.endswith("[x]"):
        inside: dict[str, Any] = {"properties": {name: counted(low)}}
        if low > 0:
            inside["required"] = [name]
        return {"if": {"type": "object"}, "then": inside, "else": low == 0}
    # a choice: several keys may add up, so say it only for one key present, among the known variants
    from harness.fhir.model import r4  # noqa: PLC0415 - the R4 table, only for choice elements

    stem = name[:-3]
    keys = sorted(stem + sfx for sfx in r4().choice_suffixes.get(stem, ()))
    if not keys or low > 1:
        return None
    if high is None:  # at least one value: some known key has one (others only add to the count)
        return {"type": "object", "anyOf": [{"required": [k], "properties": {k: counted(1)}} for k in keys]}
    known = {"propertyNames": {"anyOf": [{"not": {"pattern": f"^{re.escape(stem)}"}}, {"enum": keys},
                                         {"pattern": f"^{re.escape(stem)}([a-z0-9_]|$)"}]}}
    exactly_one = {"oneOf": [{"required": [k]} for k in keys]}
    present = {"allOf": [known, exactly_one, {"properties": {k: counted(low) for k in keys}}]}
    if low == 0:
        return {"if": {"type": "object"}, "then": {"anyOf": [
            {"allOf": [known, {"not": {"anyOf": [{"required": [k]} for k in keys]}}]}, present]}, "else": True}
    return {"type": "object", **present} if one_fits else None


def compile_screen(elements: list[tuple[list[dict[str, Any]], bool]], placeholders: frozenset[str]) -> Screen:
    import jsonschema_rs  # noqa: PLC0415 - a native module: loaded by the first rule that screens

    test: Screen = jsonschema_rs.validator_for(screen_schema(elements, placeholders)).is_valid

    def screen(resource: Any) -> bool:
        try:
            return test(resource)
        except (ValueError, TypeError, OverflowError):
            return False  # not JSON-shaped: the walk decides
    return screen
