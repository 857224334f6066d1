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
from dataclasses import dataclass
from functools import cache
from typing import Any

from harness.checks.registry import RuleContext, register
from harness.fhir.model import ElementInfo, r4
from harness.fhir.paths import Path
from harness.fhir.paths import render as _render
from harness.results import Issue

_JSON_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "boolean": frozenset({bool}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
}
# Types whose regex any non-blank string satisfies: checking them would only cost time.
_TRIVIAL_REGEX = frozenset({"string", "markdown"})



@dataclass(slots=True)
class _Slot:
    """How to check one child element: its info and, for primitives, JSON types and regex."""

    info: ElementInfo
    primitive: bool
    types: frozenset[type]
    is_string: bool
    regex: re.Pattern[str] | None
    walks: bool  # a complex type whose JSON object is walked with ``node``
    many: bool = False
    choice: str | None = None
    _node: _Node | None = None

    def __post_init__(self) -> None:
        self.many = self.info.many
        self.choice = self.info.choice

    @property
    def kind(self) -> str:
        return next(k for k, v in _JSON_TYPES.items() if v == self.types)

    @property
    def node(self) -> _Node:
        if self._node is None:
            self._node = _node(self.info.state)
        return self._node


@dataclass(slots=True)
class _Node:
    """The check plan of one element state: slots by JSON name, and the required names."""

    slots: dict[str, _Slot]
    required: tuple[str, ...]


@cache
def _node(state: tuple[str, str]) -> _Node:
    model = r4()
    slots: dict[str, _Slot] = {}
    for name, info in model.children(state).items():
        if model.is_primitive(info.type) and info.type != "xhtml":
            spec = model.primitives[info.type]
            regex = spec.get("regex") if spec["json"] == "string" and info.type not in _TRIVIAL_REGEX else None
            slots[name] = _Slot(info, True, _JSON_TYPES[spec["json"]], spec["json"] == "string",
                                re.compile(regex) if regex else None, False)
        else:
            slots[name] = _Slot(info, False, frozenset(), False, None, info.type not in ("xhtml", "Resource"))
    required = tuple(name for name, info in model.children(state).items() if info.min > 0 and not info.choice)
    return _Node(slots, required)


def validate_resource(resource: Any, path: str = "") -> list[Issue]:
    """Every base-R4 structural problem in one resource."""
    out: list[Issue] = []
    _resource(resource, path, out)
    return out


def _resource(resource: Any, path: Path, out: list[Issue]) -> None:
    if not isinstance(resource, dict):
        out.append(Issue("a resource must be a JSON object", _render(path) or None, "structure"))
        return
    rtype = resource.get("resourceType")
    model = r4()
    if not isinstance(rtype, str) or rtype not in model.resource_types:
        close = difflib.get_close_matches(str(rtype), list(model.resource_types), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        out.append(Issue(f"'{rtype}' is not an R4 resource type{hint}", _render(path) or "resourceType",
                         "structure"))
        return
    _walk(resource, _node((rtype, "")), path or rtype, True, out)


def _walk(obj: dict[str, Any], node: _Node, path: Path, is_resource: bool, out: list[Issue]) -> None:
    plan = node.slots
    if not obj:
        out.append(Issue("empty object: an element must have a value or children", _render(path), "structure"))
        return
    choices: dict[str, str] | None = None
    for key, value in obj.items():
        slot = plan.get(key)
        if slot is None:
            if key == "resourceType" and is_resource:
                continue
            _odd_key(obj, key, value, plan, path, out)
            continue
        choice = slot.choice
        if choice:
            if choices is None:
                choices = {}
            if choice in choices:
                out.append(Issue(f"both '{choices[choice]}' and '{key}' given for {choice}[x]",
                                 _render((path, key, None)), "structure"))
            choices[choice] = key
        if slot.many:
            if type(value) is not list:
                out.append(Issue(f"'{key}' repeats: it must be an array", _render((path, key, None)), "structure"))
                continue
            if not value:
                out.append(Issue("empty array: omit the element instead", _render((path, key, None)), "structure"))
                continue
            for i, item in enumerate(value):
                if item is None:
                    if "_" + key not in obj:
                        out.append(Issue("null in an array without a primitive extension",
                                         _render((path, key, i)), "structure"))
                    continue
                _value(item, slot, path, key, i, out)
        elif type(value) is list:
            out.append(Issue(f"'{key}' does not repeat: it must not be an array", _render((path, key, None)),
                             "structure"))
        else:
            _value(value, slot, path, key, None, out)
    for name in node.required:
        if name not in obj and f"_{name}" not in obj:
            out.append(Issue(f"required element '{name}' is missing", _render((path, name, None)), "required"))


def _value(value: Any, slot: _Slot, parent: Path, key: str, index: int | None, out: list[Issue]) -> None:
    """One value of an element: a primitive checked in place, an object walked."""
    if slot.primitive:
        if type(value) in slot.types and (not slot.is_string or (value and not value.isspace())) \
                and (slot.regex is None or slot.regex.fullmatch(value)):
            return
        _bad_primitive(value, slot, (parent, key, index), out)
    elif slot.walks and type(value) is dict:
        _walk(value, slot.node, (parent, key, index), False, out)
    else:
        _complex(value, slot, (parent, key, index), out)


def _bad_primitive(value: Any, slot: _Slot, path: Path, out: list[Issue]) -> None:
    if type(value) not in slot.types:
        out.append(Issue(f"{slot.info.type} must be a JSON {slot.kind}, found {type(value).__name__}",
                         _render(path), "structure"))
    elif not value or value.isspace():
        out.append(Issue("empty or blank string: omit the element instead", _render(path), "value"))
    else:
        out.append(Issue(f"'{value}' is not a valid {slot.info.type}", _render(path), "value"))


def _complex(value: Any, slot: _Slot, path: Path, out: list[Issue]) -> None:
    info = slot.info
    if info.type == "xhtml":
        if type(value) is not str or not value.strip():
            out.append(Issue("narrative div must be a non-empty XHTML string", _render(path), "structure"))
        return
    if info.type == "Resource":
        _resource(value, path, out)
        return
    if type(value) is not dict:
        out.append(Issue(f"{info.type} must be a JSON object, found {type(value).__name__}", _render(path),
                         "structure"))
        return
    _walk(value, slot.node, path, False, out)


def _odd_key(obj: dict[str, Any], key: str, value: Any, plan: dict[str, _Slot], path: Path,
             out: list[Issue]) -> None:
    """A key that is not an element: a primitive's ``_`` companion, or an error."""
    if key.startswith("_"):
        base = plan.get(key[1:])
        if base is not None and base.primitive:
            _companion(value, base.info, (path, key, None), obj.get(key[1:]), out)
            return
        out.append(Issue(f"unknown element '{key}'", _render((path, key, None)), "structure"))
        return
    close = difflib.get_close_matches(key, list(plan), n=1)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    out.append(Issue(f"unknown element '{key}'{hint}", _render((path, key, None)), "structure"))


def _companion(value: Any, info: ElementInfo, path: Path, primary: Any, out: list[Issue]) -> None:
    state = _node((info.type, ""))
    if info.many:
        if not isinstance(value, list):
            out.append(Issue("primitive extension companion must be an array", _render(path), "structure"))
            return
        if primary is not None and (not isinstance(primary, list) or len(primary) != len(value)):
            out.append(Issue("primitive extension array must align with its values", _render(path), "structure"))
        parent, key, _ = path
        for i, item in enumerate(value):
            if item is not None:
                _walk_item(item, state, (parent, key, i), out)
        return
    _walk_item(value, state, path, out)


def _walk_item(item: Any, state: _Node, path: Path, out: list[Issue]) -> None:
    if not isinstance(item, dict):
        out.append(Issue("primitive extension companion must be an object", _render(path), "structure"))
        return
    _walk(item, state, path, False, out)


@register("structure", scope="resource")
def structure(params: dict[str, Any], ctx: RuleContext) -> Callable[[dict[str, Any], Any], Iterable[Issue]]:
    """Each resource is valid base FHIR R4 JSON (elements, cardinality, primitive formats)."""
    def check(resource: dict[str, Any], values: Any) -> Iterable[Issue]:
        return validate_resource(resource)

    return check
