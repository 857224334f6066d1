"""The ``structure`` check kind: base FHIR R4 validity of a JSON resource.

Walks the resource with the R4 structure table: every property must be an element of its
type (choice elements at most one variant), arrays exactly where the element repeats,
primitive values of the right JSON kind and matching the type's regex, required elements
present, and no empty objects, arrays or strings.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from harness.checks.registry import RuleContext, register
from harness.fhir.model import ElementInfo, r4
from harness.results import Issue

_JSON_KINDS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


@cache
def _primitive_rule(type_name: str) -> tuple[Callable[[Any], bool], str, re.Pattern[str] | None]:
    spec = r4().primitives[type_name]
    regex = spec.get("regex")
    compiled = re.compile(regex) if regex and spec["json"] == "string" else None
    return _JSON_KINDS[spec["json"]], spec["json"], compiled


@cache
def _required(state: tuple[str, str]) -> tuple[str, ...]:
    return tuple(name for name, info in r4().children(state).items() if info.min > 0 and not info.choice)


def validate_resource(resource: Any, path: str = "") -> list[Issue]:
    """Every base-R4 structural problem in one resource."""
    out: list[Issue] = []
    _resource(resource, path, out)
    return out


def _resource(resource: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(resource, dict):
        out.append(Issue("a resource must be a JSON object", path or None, "structure"))
        return
    rtype = resource.get("resourceType")
    model = r4()
    if not isinstance(rtype, str) or rtype not in model.resource_types:
        close = difflib.get_close_matches(str(rtype), list(model.resource_types), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        out.append(Issue(f"'{rtype}' is not an R4 resource type{hint}", path or "resourceType", "structure"))
        return
    _walk(resource, (rtype, ""), path or rtype, True, out)


@cache
def _plan(state: tuple[str, str]) -> dict[str, tuple[ElementInfo, Any]]:
    """Per child: its info and, for primitives, (kind test, kind name, regex)."""
    model = r4()
    plan: dict[str, tuple[ElementInfo, Any]] = {}
    for name, info in model.children(state).items():
        rule = _primitive_rule(info.type) if model.is_primitive(info.type) and info.type != "xhtml" else None
        plan[name] = (info, rule)
    return plan


def _walk(obj: dict[str, Any], state: tuple[str, str], path: str, is_resource: bool,
          out: list[Issue]) -> None:
    plan = _plan(state)
    if not obj:
        out.append(Issue("empty object: an element must have a value or children", path, "structure"))
        return
    choices: dict[str, str] | None = None
    for key, value in obj.items():
        entry = plan.get(key)
        if entry is None:
            if key == "resourceType" and is_resource:
                continue
            _odd_key(obj, key, value, plan, path, out)
            continue
        info, prim = entry
        if info.choice:
            if choices is None:
                choices = {}
            if info.choice in choices:
                out.append(Issue(f"both '{choices[info.choice]}' and '{key}' given for {info.choice}[x]",
                                 f"{path}.{key}", "structure"))
            choices[info.choice] = key
        if info.many:
            if not isinstance(value, list):
                out.append(Issue(f"'{key}' repeats: it must be an array", f"{path}.{key}", "structure"))
                continue
            if not value:
                out.append(Issue("empty array: omit the element instead", f"{path}.{key}", "structure"))
                continue
            for i, item in enumerate(value):
                if item is None:
                    if "_" + key not in obj:
                        out.append(Issue("null in an array without a primitive extension",
                                         f"{path}.{key}[{i}]", "structure"))
                    continue
                _value(item, info, prim, path, key, i, out)
        elif isinstance(value, list):
            out.append(Issue(f"'{key}' does not repeat: it must not be an array", f"{path}.{key}", "structure"))
        else:
            _value(value, info, prim, path, key, None, out)
    for name in _required(state):
        if name not in obj and f"_{name}" not in obj:
            out.append(Issue(f"required element '{name}' is missing", f"{path}.{name}", "required"))


def _odd_key(obj: dict[str, Any], key: str, value: Any, plan: dict[str, tuple[ElementInfo, Any]],
             path: str, out: list[Issue]) -> None:
    """A key that is not an element: a primitive's ``_`` companion, or an error."""
    if key.startswith("_"):
        base = plan.get(key[1:])
        if base is not None and base[1] is not None:
            _companion(value, base[0], f"{path}.{key}", obj.get(key[1:]), out)
            return
        out.append(Issue(f"unknown element '{key}'", f"{path}.{key}", "structure"))
        return
    close = difflib.get_close_matches(key, list(plan), n=1)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    out.append(Issue(f"unknown element '{key}'{hint}", f"{path}.{key}", "structure"))


def _value(value: Any, info: ElementInfo, prim: Any, parent: str, key: str, index: int | None,
           out: list[Issue]) -> None:
    if prim is not None:
        ok, kind, regex = prim
        if not ok(value):
            msg = f"{info.type} must be a JSON {kind}, found {type(value).__name__}"
        elif kind != "string":
            return
        elif not value.strip():
            msg = "empty or blank string: omit the element instead"
        elif regex is None or regex.fullmatch(value):
            return
        else:
            msg = f"'{value}' is not a valid {info.type}"
        out.append(Issue(msg, _path(parent, key, index), "value" if ok(value) else "structure"))
        return
    if info.type == "xhtml":
        if not isinstance(value, str) or not value.strip():
            out.append(Issue("narrative div must be a non-empty XHTML string", _path(parent, key, index),
                             "structure"))
        return
    if info.type == "Resource":
        _resource(value, _path(parent, key, index), out)
        return
    if not isinstance(value, dict):
        out.append(Issue(f"{info.type} must be a JSON object, found {type(value).__name__}",
                         _path(parent, key, index), "structure"))
        return
    _walk(value, info.state, _path(parent, key, index), False, out)


def _path(parent: str, key: str, index: int | None) -> str:
    return f"{parent}.{key}" if index is None else f"{parent}.{key}[{index}]"


def _companion(value: Any, info: ElementInfo, path: str, primary: Any, out: list[Issue]) -> None:
    state = (info.type, "")
    if info.many:
        if not isinstance(value, list):
            out.append(Issue("primitive extension companion must be an array", path, "structure"))
            return
        if primary is not None and (not isinstance(primary, list) or len(primary) != len(value)):
            out.append(Issue("primitive extension array must align with its values", path, "structure"))
        for i, item in enumerate(value):
            if item is not None:
                _walk_item(item, state, f"{path}[{i}]", out)
        return
    _walk_item(value, state, path, out)


def _walk_item(item: Any, state: tuple[str, str], path: str, out: list[Issue]) -> None:
    if not isinstance(item, dict):
        out.append(Issue("primitive extension companion must be an object", path, "structure"))
        return
    _walk(item, state, path, False, out)


@register("structure", scope="resource")
def structure(params: dict[str, Any], ctx: RuleContext) -> Callable[[dict[str, Any], Any], Iterable[Issue]]:
    """Each resource is valid base FHIR R4 JSON (elements, cardinality, primitive formats)."""
    def check(resource: dict[str, Any], values: Any) -> Iterable[Issue]:
        return validate_resource(resource)

    return check
