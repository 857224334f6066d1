"""One pass over a resource against its compiled definition: every base FHIR R4 problem, by family.

The walker takes the instance and the compiled element table together (states as in
:mod:`harness.fhir.model`). Each state compiles once into a :class:`Node`: the slot of every
JSON name (JSON kind and format of primitives, array or not, finite maximum, choice group,
binding, constraints, reference targets), the required names and the required choice groups;
:mod:`harness.fhir.codegen` turns each Node into a generated walk function, and this module
holds what those functions call for the less common cases. One walk yields :class:`Violation`
records in five families, so the rules of a suite can say which kind of error a resource has
without walking it again:

- ``structure``: unknown elements, JSON types, arrays, empty values, primitive formats, XHTML;
- ``cardinality``: minimum and maximum of every element, choice elements included;
- ``binding``: codes outside a required value set (errors) or, where the code's system is one
  the value set names, outside an extensible or preferred one (warnings);
- ``invariant``: every constraint of every element present (errors, or warnings where the
  definition says so);
- ``reference``: reference format, target types, contained references.

Constraints that cannot be evaluated are collected in :attr:`Outcome.not_evaluated`, never
counted as met.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import orjson

from harness.fhir.extensions import check_extension
from harness.fhir.invariants import Invariant, compile_invariant, holds
from harness.fhir.model import VALUESETS_PATH, ElementInfo, r4
from harness.fhir.paths import Path
from harness.fhir.paths import render as _render
from harness.fhir.primitives import Checker, checker
from harness.fhir.xhtml import narrative_problems

FAMILIES = ("structure", "cardinality", "binding", "invariant", "reference")

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "integer": (int,), "number": (int, float),
}
_CODED = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})
_ANY_RESOURCE = frozenset({"Resource", "DomainResource"})
_SYSTEMS = frozenset({"Coding", "Identifier", "Quantity"})  # whose system must be an absolute URI


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem with one resource: its family, whether it is only a warning, what and where."""

    family: str
    message: str
    path: str
    code: str = "invalid"
    warning: bool = False
    key: str | None = None  # the invariant key or value set URL


@dataclass(slots=True)
class Outcome:
    violations: list[Violation] = field(default_factory=list)
    not_evaluated: dict[str, str] = field(default_factory=dict)  # invariant key → why

    def add(self, family: str, message: str, path: Path, code: str = "invalid", warning: bool = False,
            key: str | None = None) -> None:
        self.violations.append(Violation(family, message, _render(path), code, warning, key))


@dataclass(slots=True)
class Binding:
    strength: str
    url: str
    name: str
    codes: dict[str, frozenset[str]] | None  # None: not expandable offline
    reason: str | None


@dataclass(slots=True)
class Slot:
    info: ElementInfo
    kind: str  # primitive | complex | xhtml | resource
    json_types: tuple[type, ...] = ()
    check: Checker | None = None
    json_kind: str = ""  # string | boolean | integer | number, for a primitive
    max: int | None = None
    binding: Binding | None = None
    invariants: tuple[Invariant, ...] = ()
    targets: frozenset[str] | None = None
    fixed: Any = None
    pattern: Any = None
    _node: Node | None = None

    @property
    def node(self) -> Node:
        if self._node is None:
            self._node = node(self.info.state)
        return self._node

    @property
    def node_path(self) -> str:
        return _fhir_path(self.info.state)

    @property
    def needs_post(self) -> bool:
        """Whether a complex value needs checks after its walk (extension, system, binding, reference)."""
        t = self.info.type
        return bool(t == "Extension" or t in _SYSTEMS or self.binding is not None or self.targets is not None
                    or t == "Reference")


@dataclass(slots=True)
class Node:
    slots: dict[str, Slot]
    required: tuple[str, ...]
    choices: tuple[tuple[str, int], ...]  # (choice base name, minimum)
    invariants: tuple[Invariant, ...]
    fhir_path: str
    _walk: Any = None

    @property
    def walk(self) -> Any:
        """The generated walk function of this state (harness.fhir.codegen), compiled on first use."""
        if self._walk is None:
            from harness.fhir.codegen import compile_walk  # noqa: PLC0415 - codegen imports this module

            self._walk = compile_walk(self)
        return self._walk


@cache
def valuesets() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(VALUESETS_PATH.read_bytes())["valueSets"]
    return data


@cache
def binding(strength: str, url: str) -> Binding:
    bare = url.split("|", maxsplit=1)[0]
    entry = valuesets().get(bare)
    if entry is None:
        return Binding(strength, bare, bare.rsplit("/", 1)[-1], None, "value set is not in the R4 expansions")
    if "codes" not in entry:
        return Binding(strength, bare, entry["name"], None, entry["unexpandable"])
    codes = {system: frozenset(c) for system, c in entry["codes"].items()}
    return Binding(strength, bare, entry["name"], codes, None)


def _fhir_path(state: tuple[str, str]) -> str:
    type_name, rel = state
    return f"{type_name}.{rel}" if rel else type_name


def _invariants(keys: list[str], base: str) -> tuple[Invariant, ...]:
    table = r4().constraints
    out = []
    for key in keys:
        severity, human, expression = table[key]
        out.append(compile_invariant(key, severity, human, expression, base))
    return tuple(out)


@cache
def node(state: tuple[str, str]) -> Node:
    model = r4()
    children = model.children(state)
    slots: dict[str, Slot] = {}
    choices: dict[str, int] = {}
    base = _fhir_path(state)
    for name, info in children.items():
        extras = info.extras
        if model.is_primitive(info.type) and info.type != "xhtml":
            spec = model.primitives[info.type]
            slot = Slot(info, "primitive", _JSON_TYPES[spec["json"]], checker(info.type), json_kind=spec["json"])
        elif info.type == "xhtml":
            slot = Slot(info, "xhtml")
        elif info.type in _ANY_RESOURCE:
            slot = Slot(info, "resource")
        else:
            slot = Slot(info, "complex")
        slot.max = extras.get("max")
        if "bind" in extras and (slot.kind == "primitive" or info.type in _CODED):
            slot.binding = binding(*extras["bind"])
        child_base = f"{base}.{info.choice.rsplit('.', 1)[-1] if info.choice else name}"
        slot.invariants = _invariants(extras.get("inv", []), child_base)
        if "targets" in extras:
            slot.targets = frozenset(extras["targets"])
        slot.fixed = extras.get("fixed")
        slot.pattern = extras.get("pattern")
        if info.choice and extras.get("cmin"):
            choices[info.choice.rsplit(".", 1)[-1]] = extras["cmin"]
        slots[name] = slot
    required = tuple(n for n, i in children.items() if i.min > 0 and not i.choice)
    type_name, rel = state
    own = _invariants(model.root_constraints(type_name), type_name) if not rel else ()
    return Node(slots, required, tuple(choices.items()), own, base)


# --- the walk ------------------------------------------------------------------------------

def validate(resource: Any, path: str = "") -> Outcome:
    """Every base-R4 problem in one resource (contained resources included)."""
    out = Outcome()
    try:
        _resource(resource, path, out, None)
    except RecursionError:
        # orjson reads up to 1,024 levels; FHIR resources need a few dozen, so this is hostile input
        out.violations.clear()
        out.add("structure", "the resource nests too deeply to be checked", path or "resource", "structure")
    return out


def _resource(resource: Any, path: Path, out: Outcome, container: dict[str, Any] | None) -> None:
    if not isinstance(resource, dict):
        out.add("structure", "a resource must be a JSON object", path or "", "structure")
        return
    rtype = resource.get("resourceType")
    model = r4()
    if not isinstance(rtype, str) or rtype not in model.resource_types:
        close = difflib.get_close_matches(str(rtype), list(model.resource_types), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        out.add("structure", f"'{rtype}' is not an R4 resource type{hint}", path or "resourceType", "structure")
        return
    ctx = _Ctx(resource, container or resource, out)
    node((rtype, "")).walk(resource, path or rtype, True, ctx, (rtype,))


@dataclass(slots=True)
class _Ctx:
    resource: dict[str, Any]
    root: dict[str, Any]
    out: Outcome


EMPTY_ELEMENT = "empty element: it must have a value or children (ele-1)"


def other_keys(obj: dict[str, Any], nd: Node, path: Path, is_resource: bool, ctx: _Ctx,
               where: tuple[str, ...]) -> set[str]:
    """The keys the generated walk leaves: unknown ones, ``_`` companions, nulls; returns choices seen.

    ``where``: the element's FHIR paths (``Patient.name``, ``HumanName``): the contexts an extension may name.
    """
    plan = nd.slots
    seen: set[str] = set()
    for key, item in obj.items():
        slot = plan.get(key)
        if slot is None:
            if key == "resourceType" and is_resource:
                continue
            _odd_key(obj, key, item, plan, path, ctx, where)
        elif item is None:
            if slot.info.choice:
                seen.add(slot.info.choice.rsplit(".", 1)[-1])
            if slot.info.many:
                ctx.out.add("structure", f"'{key}' repeats: it must be a JSON array, not an object or value",
                            (path, key, None), "structure")
            check_value(item, slot, path, key, None, ctx, where)
    return seen


def check_invariants(invariants: tuple[Invariant, ...], focus: Any, path: Path, ctx: _Ctx) -> None:
    for inv in invariants:
        if inv.key == "dom-6" and ctx.root is not ctx.resource:
            continue  # a contained resource needs no narrative of its own (its container has one)
        if not holds(inv, focus, ctx.resource, ctx.root, ctx.out.not_evaluated):
            invariant_failed(inv, path, ctx)


def invariant_failed(inv: Invariant, path: Path, ctx: _Ctx) -> None:
    family = "reference" if inv.key == "ref-1" else "invariant"
    ctx.out.add(family, f"constraint {inv.key} failed: {inv.human}", path, "invariant", inv.warning, inv.key)


def check_value(value: Any, slot: Slot, parent: Path, key: str, index: int | None, ctx: _Ctx,
           where: tuple[str, ...]) -> None:
    """One value of an element: a primitive checked in place, an object walked."""
    kind = slot.kind
    if kind == "primitive":
        if type(value) in slot.json_types and not (type(value) is bool and bool not in slot.json_types):
            if type(value) is str and (not value or value.isspace()) and slot.info.type != "string":
                ctx.out.add("structure", "empty or blank value: omit the element instead", (parent, key, index),
                            "value")
                return
            if type(value) is str and not value:
                ctx.out.add("structure", "empty string: omit the element instead", (parent, key, index), "value")
                return
            problem = slot.check(value) if slot.check else None
            if problem:
                ctx.out.add("structure", problem, (parent, key, index), "value")
                return
            if slot.binding is not None:
                check_code(slot.binding, None, value, (parent, key, index), ctx)
        else:
            ctx.out.add("structure", f"{slot.info.type} must be a JSON {slot.json_kind}, found {json_name(value)}",
                        (parent, key, index), "structure")
        if slot.invariants:
            check_invariants(slot.invariants, value, (parent, key, index), ctx)
        return
    path = (parent, key, index)
    if kind == "xhtml":
        if type(value) is not str or not value.strip():
            ctx.out.add("structure", "narrative div must be a non-empty XHTML string", path, "structure")
            return
        for problem in narrative_problems(value):
            ctx.out.add("invariant", f"constraint txt-1 failed: {problem}", path, "invariant", False, "txt-1")
        others = tuple(inv for inv in slot.invariants if inv.key != "txt-1")
        if others:
            check_invariants(others, value, path, ctx)
        return
    if kind == "resource":
        _resource(value, path, ctx.out, ctx.root)
        return
    if type(value) is not dict:
        ctx.out.add("structure", f"{slot.info.type} must be a JSON object, found {json_name(value)}", path,
                    "structure")
        return
    leaf = slot.info.choice.rsplit(".", 1)[-1] if slot.info.choice else key
    slot.node.walk(value, path, False, ctx, (f"{where[0]}.{leaf}", slot.node.fhir_path))
    post_complex(value, slot, path, ctx, where)


def post_complex(value: dict[str, Any], slot: Slot, path: Path, ctx: _Ctx, where: tuple[str, ...],
                 invariants: bool = True) -> None:
    """The checks of a complex value after its walk: extension use, system URIs, binding, reference, constraints."""
    if slot.info.type == "Extension":
        check_extension(value, where, path, ctx.out, str(ctx.resource.get("resourceType")))
    if slot.info.type in _SYSTEMS:
        system = value.get("system")
        if isinstance(system, str) and system and ":" not in system:
            ctx.out.add("structure", f"{slot.info.type}.system must be an absolute URI, not a local reference",
                        (path, "system", None), "value")
    if slot.binding is not None:
        check_coded(slot, value, path, ctx)
    if slot.targets is not None or slot.info.type == "Reference":
        _check_reference(slot, value, path, ctx)
    if invariants and slot.invariants:
        check_invariants(slot.invariants, value, path, ctx)


def json_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


# --- bindings ------------------------------------------------------------------------------

def _codings(slot: Slot, value: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    t = slot.info.type
    if t == "CodeableConcept":
        for coding in value.get("coding", ()) if isinstance(value.get("coding"), list) else ():
            if isinstance(coding, dict):
                yield coding.get("system"), coding.get("code")
    elif t in ("Coding", "Quantity"):
        yield value.get("system"), value.get("code")


def check_coded(slot: Slot, value: dict[str, Any], path: Path, ctx: _Ctx) -> None:
    b = slot.binding
    assert b is not None
    pairs = [(s, c) for s, c in _codings(slot, value) if isinstance(c, str)]
    if b.codes is None:
        if pairs and b.strength == "required":
            ctx.out.not_evaluated.setdefault(f"binding:{b.url}", b.reason or "not expandable")
        return
    if slot.info.type == "CodeableConcept" and b.strength == "required":
        if not pairs:
            if "coding" in value or "text" not in value:
                return  # no code given: cardinality, not the binding, says whether one is needed
            ctx.out.add("binding", f"no code from the required value set '{b.name}' ({b.url}), only text",
                        path, "code-invalid", False, b.url)
            return
        if any(isinstance(s, str) and c in b.codes.get(s, ()) for s, c in pairs):
            return
        system, code = pairs[0]
        _report(b, system, code, path, ctx)
        return
    for system, code in pairs:
        if isinstance(system, str) and code in b.codes.get(system, ()):
            continue
        _report(b, system, code, path, ctx)


def check_code(b: Binding, system: Any, code: Any, path: Path, ctx: _Ctx) -> None:
    """A bare ``code`` element: its code systems are those the value set names."""
    if b.codes is None:
        if b.strength == "required":
            ctx.out.not_evaluated.setdefault(f"binding:{b.url}", b.reason or "not expandable")
        return
    if any(code in codes for codes in b.codes.values()):
        return
    if b.strength == "required":
        ctx.out.add("binding", f"the value '{code}' is not in the required value set '{b.name}' ({b.url})",
                    path, "code-invalid", False, b.url)


def _report(b: Binding, system: Any, code: Any, path: Path, ctx: _Ctx) -> None:
    assert b.codes is not None
    if b.strength == "required":
        where = f"{system}#{code}" if system else f"'{code}' (no system)"
        ctx.out.add("binding", f"the code {where} is not in the required value set '{b.name}' ({b.url})",
                    path, "code-invalid", False, b.url)
    elif isinstance(system, str) and system in b.codes:
        ctx.out.add("binding", f"the code {system}#{code} is not in the {b.strength} value set '{b.name}' "
                               f"({b.url}), although its code system is one the value set uses",
                    path, "code-invalid", True, b.url)


# --- references ----------------------------------------------------------------------------

def reference_type(reference: str) -> str | None:
    """The resource type a literal reference names (``Patient/1``, ``https://x/fhir/Patient/1/_history/2``)."""
    parts = reference.split("?", maxsplit=1)[0].split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2]
    return None


def _check_reference(slot: Slot, value: dict[str, Any], path: Path, ctx: _Ctx) -> None:
    ref = value.get("reference")
    if not isinstance(ref, str) or not ref:
        return
    if ref.startswith("#"):
        contained = ctx.root.get("contained")
        target = next((c for c in contained if isinstance(c, dict) and c.get("id") == ref[1:]), None) \
            if isinstance(contained, list) else None
        rtype = target.get("resourceType") if target else ("container" if ref == "#" else None)
        if not isinstance(rtype, str):
            return  # ref-1 (or the contained resource's own structure finding) reports it
        problem = _target_problem(rtype, slot.targets)
    else:
        problem = _literal_problem(ref, slot.targets)
    if problem:
        ctx.out.add("reference", problem, (path, "reference", None), "structure")


@lru_cache(maxsize=8192)
def _literal_problem(ref: str, targets: frozenset[str] | None) -> str | None:
    """What is wrong with a literal reference for an element allowing ``targets`` (remembered: references repeat)."""
    if ref.startswith(("urn:uuid:", "urn:oid:")):
        return None  # resolved against the Bundle or export by the reference rules
    rtype = reference_type(ref)
    if rtype is None or rtype not in r4().resource_types:
        if "://" not in ref:
            return f"relative references must have the form [ResourceType]/[id]: '{ref}'"
        return None
    return _target_problem(rtype, targets)


def _target_problem(rtype: str, targets: frozenset[str] | None) -> str | None:
    if targets is None or rtype == "container" or targets & _ANY_RESOURCE or rtype in targets:
        return None
    return f"the reference points at a {rtype}, but this element may only refer to {', '.join(sorted(targets))}"


# --- keys that are not elements ------------------------------------------------------------

def _odd_key(obj: dict[str, Any], key: str, value: Any, plan: dict[str, Slot], path: Path, ctx: _Ctx,
            where: tuple[str, ...]) -> None:
    """A key that is not an element: a primitive's ``_`` companion, or an error."""
    if key.startswith("_"):
        base = plan.get(key[1:])
        if base is not None and base.kind == "primitive":
            name = key[1:]
            _companion(value, base, (path, key, None), obj.get(name), ctx,
                       (*(f"{w}.{name}" for w in where), base.info.type))
            return
        ctx.out.add("structure", f"unknown element '{key}'", (path, key, None), "structure")
        return
    close = difflib.get_close_matches(key, list(plan), n=1)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    ctx.out.add("structure", f"unknown element '{key}'{hint}", (path, key, None), "structure")


def _companion(value: Any, slot: Slot, path: Path, primary: Any, ctx: _Ctx, where: tuple[str, ...]) -> None:
    state = node((slot.info.type, ""))
    if slot.info.many:
        if not isinstance(value, list):
            ctx.out.add("structure", "primitive extension companion must be an array", path, "structure")
            return
        if primary is not None and (not isinstance(primary, list) or len(primary) != len(value)):
            ctx.out.add("structure", "primitive extension array must align with its values", path, "structure")
        parent, key, _ = path
        for i, item in enumerate(value):
            if item is not None:
                _companion_item(item, state, (parent, key, i), ctx, where)
        return
    _companion_item(value, state, path, ctx, where)


def _companion_item(item: Any, state: Node, path: Path, ctx: _Ctx, where: tuple[str, ...]) -> None:
    if not isinstance(item, dict):
        ctx.out.add("structure", "primitive extension companion must be an object", path, "structure")
        return
    state.walk(item, path, False, ctx, where)
