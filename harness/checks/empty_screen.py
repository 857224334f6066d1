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
    every = [_follow(steps, {"$ref": "#/$defs/code" if coded else "#/$defs/deep"}) for steps, coded in elements]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": every, "$defs": defs}


def _follow(steps: list[dict[str, Any]], end: dict[str, Any]) -> dict[str, Any]:
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


def compile_screen(elements: list[tuple[list[dict[str, Any]], bool]], placeholders: frozenset[str]) -> Screen:
    import jsonschema_rs  # noqa: PLC0415 - a native module: loaded by the first rule that screens

    test: Screen = jsonschema_rs.validator_for(screen_schema(elements, placeholders)).is_valid

    def screen(resource: Any) -> bool:
        try:
            return test(resource)
        except (ValueError, TypeError, OverflowError):
            return False  # not JSON-shaped: the walk decides
    return screen
