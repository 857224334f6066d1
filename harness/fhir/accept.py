r"""The validator's fast accept path: one JSON Schema per resource type, run by jsonschema-rs.

Most resources in an export are valid. For those, the Python walk (:mod:`harness.fhir.codegen`)
spends its time confirming what a compiled JSON Schema confirms natively (jsonschema-rs), about
fifteen times faster: element names, JSON types, arrays, cardinality and choice elements, primitive
formats, required and extensible bindings, absolute system URIs, reference forms and target types.
Each schema is built from the same compiled states (:func:`harness.fhir.validator.node`) and is
*at most as permissive* as the walk: whatever it cannot say exactly it refuses (contained resources,
``_`` companions, nulls, ``#`` references, a 29 February, unexpandable required bindings, R4 core
extensions — their contexts are the walk's —, values of uncommon types in open-typed elements), and
a refused resource is walked in Python as before. Patterns spell Python's whitespace out, so a Rust
regex and Python's ``\s`` agree. Constraints of a shape a schema can say exactly go into it (ext-1,
dom-6, every ``a.empty() or b.exists()`` and ``a.empty() or b.empty()``; ref-1 through the reference
pattern; dom-2…dom-5 hold wherever contained resources are refused).

What a schema cannot say at all is the *residual*, checked in Python on an accepted resource along
the few elements that need it: the other constraints (compiled as for the walk), the narrative's
XHTML, and integers given as ``1.0`` (JSON Schema counts them as integers; FHIR does not). If the
residual finds any problem at all — a violation, a warning, a constraint it cannot evaluate — the
resource is walked in full instead, so this path only ever answers "nothing found", and every
finding a report carries is the walk's own.

Soundness (schema accepts and residual is clean ⇒ the walk finds nothing) is what the tests check,
on every corpus resource, on mutations of them, and on generated strings for every primitive type.
Nesting: every reader bounds depth (orjson 1,024 levels, the streamed readers 128, lxml 256); the
schema run was checked at 10,000.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from typing import Any

from harness.fhir.invariants import NotEvaluated
from harness.fhir.model import r4
from harness.fhir.primitives import INT_MAX, INT_MIN, MAX_STRING
from harness.fhir.validator import (
    _ANY_RESOURCE,
    _SYSTEMS,
    Node,
    Outcome,
    Slot,
    node,
    validate,
)
from harness.fhir.xhtml import narrative_problems
from harness.fhirpath_schema import Schema, char_class, interned, true_schema

ENV_SWITCH = "CARE_ASSURE_SCHEMA_ACCEPT"  # "0" turns the accept path off (the walk alone; for comparisons)

# Python's whitespace (str.isspace, and re's \s on str) spelled out, so a Rust regex means the same
# (a test compares it with every code point).
PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


SPACE = char_class(PY_SPACE)
NOT_SPACE = char_class(PY_SPACE, negate=True)
_YEAR = "([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH = "(0[1-9]|1[0-2])"
# Real calendar days only, and never 29 February (a leap year is left to the walk).
_MONTH_DAY = "((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?"
_ZONE = "(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_ID = "[A-Za-z0-9\\-\\.]{1,64}"

_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_STRING}


def _text(pattern: str, limit: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "pattern": pattern}
    if limit:
        out["maxLength"] = MAX_STRING
    return out


# Each R4 primitive: a schema accepting only values the walk's format check accepts (blank values
# included: the walk refuses a blank value of any type but string).
PRIMITIVES: dict[str, dict[str, Any]] = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
    "positiveInt": {"type": "integer", "minimum": 1, "maximum": INT_MAX},
    "unsignedInt": {"type": "integer", "minimum": 0, "maximum": INT_MAX},
    "decimal": {"type": "number"},
    "string": _TEXT,
    "markdown": {**_TEXT, "pattern": NOT_SPACE},
    "code": _text(f"^{NOT_SPACE}+({SPACE}{NOT_SPACE}+)*$"),
    "id": _text(f"^{_ID}$"),
    "uri": _text(f"^{NOT_SPACE}+$"),
    "url": _text(f"^{NOT_SPACE}+$"),
    "canonical": _text(f"^{NOT_SPACE}+$"),
    "oid": _text("^urn:oid:[0-2](\\.(0|[1-9][0-9]*))+$"),
    "uuid": _text("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    "date": _text(f"^{_YEAR}(-{_MONTH}|-{_MONTH_DAY})?$"),
    "dateTime": _text(f"^{_YEAR}(-{_MONTH}|-{_MONTH_DAY}(T{_TIME}{_ZONE})?)?$"),
    "instant": _text(f"^{_YEAR}-{_MONTH_DAY}T{_TIME}{_ZONE}$"),
    "time": _text(f"^{_TIME}$"),
    "base64Binary": {**_text("^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$", limit=False),
                     "minLength": 1},
}
# A narrative's div: a string with something besides whitespace (its XHTML is the residual's).
_XHTML = {"type": "string", "pattern": NOT_SPACE}
# Constraints the schema decides: ref-1 holds for any reference not starting with '#', which the
# reference pattern refuses.
SCHEMA_DECIDES = frozenset({"ref-1"})


_EMPTY_OR_EXISTS = re.compile(r"(\w+)\.empty\(\) or (\w+)\.exists\(\)")
_EMPTY_OR_EMPTY = re.compile(r"(\w+)\.empty\(\) or (\w+)\.empty\(\)")


def _present(nd: Node, name: str) -> dict[str, Any] | None:
    """The schema of 'element ``name`` is present' on an accepted object (a choice: any of its types)."""
    keys = [name] if name in nd.slots else [k for k, s in nd.slots.items()
                                           if s.info.choice and s.info.choice.rsplit(".", 1)[-1] == name]
    if not keys:
        return None
    return {"required": keys} if len(keys) == 1 else {"anyOf": [{"required": [k]} for k in keys]}


def constraint_schema(inv: Any, nd: Node, root: bool) -> Schema | None:
    """A schema under which a constraint holds (None: the residual checks it).

    Said exactly for the shapes below; otherwise, for a constraint evaluated as FHIRPath, a schema
    sufficient for its expression to be true (:mod:`harness.fhirpath_schema`): an object it refuses
    is one the constraint may still hold on, and its resource is walked.
    """
    exact = _exact_constraint(inv, nd, root)
    if exact is not None or not inv.by_fhirpath:
        return exact
    return true_schema(inv.expression)


def _exact_constraint(inv: Any, nd: Node, root: bool) -> dict[str, Any] | None:
    """A constraint said exactly as a schema, for the few shapes that can be (None: not one of them).

    On an accepted object an element is present exactly when its JSON name is (no nulls, empty
    values or ``_`` companions get through), so ``x.empty()`` and ``x.exists()`` are key tests.
    """
    e = inv.expression
    if inv.key == "ext-1" and e == "extension.exists() != value.exists()":
        ext, value = _present(nd, "extension"), _present(nd, "value")
        if ext is None or value is None:
            return None
        return {"if": ext, "then": {"not": value}, "else": value}
    if inv.key == "dom-6" and e == "text.`div`.exists()" and root:
        return {"required": ["text"], "properties": {"text": {"required": ["div"]}}}
    m = _EMPTY_OR_EXISTS.fullmatch(e) or _EMPTY_OR_EMPTY.fullmatch(e)
    if m is None:
        return None
    first, second = _present(nd, m.group(1)), _present(nd, m.group(2))
    if first is None or second is None:
        return None
    if e.endswith(".exists()"):
        return {"if": first, "then": second}
    return {"not": {"allOf": [first, second]}}


_FEW_VARIANTS = 8
# The data types an open-typed element (an extension's value, Task.input.value[x], …) is commonly given
# in; compiled into the schema. A value of any other type (Dosage, Timing, SampledData, …) sends its
# resource to the walk.
_COMMON = frozenset({"Address", "Attachment", "CodeableConcept", "Coding", "ContactPoint", "HumanName",
                     "Identifier", "Period", "Quantity", "Range", "Reference"})


class _Unsupported(Exception):
    """A state the schema builder does not express; its resource type is always walked."""


def _name(state: tuple[str, str]) -> str:
    return f"{state[0]}.{state[1]}" if state[1] else state[0]


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self.expressions: dict[str, dict[str, Any]] = {}  # a constraint's expression → the reference to its schema

    def constraint(self, inv: Any, nd: Node, root: bool) -> Schema | None:
        """A constraint's schema; one from its FHIRPath is written once, as a definition."""
        found = constraint_schema(inv, nd, root)
        if found is None or not inv.by_fhirpath or found is not true_schema(inv.expression):
            return found  # said exactly: written in place
        ref = self.expressions.get(inv.expression)
        if ref is None:
            name = f"fp:{len(self.expressions)}"
            self.defs[name] = interned(found, self.defs, f"{name}.")
            ref = self.expressions[inv.expression] = {"$ref": f"#/$defs/{name}"}
        return ref

    def shared(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """A reference to one definition of ``schema``: jsonschema-rs compiles a pattern once per place it
        is written (~100 KiB each), once in all for a definition it is referred to."""
        self.defs.setdefault(name, schema)
        return {"$ref": f"#/$defs/{name}"}

    def ref(self, state: tuple[str, str], root: bool = False) -> dict[str, Any]:
        name = _name(state)
        if name not in self.defs:
            self.defs[name] = True  # placeholder: states can be recursive
            self.defs[name] = self.state(node(state), state, root)
        return {"$ref": f"#/$defs/{name}"}

    def state(self, nd: Node, state: tuple[str, str], root: bool) -> dict[str, Any]:
        props: dict[str, Any] = {}
        groups: dict[str, list[str]] = {}
        for key, slot in nd.slots.items():
            if slot.info.choice:
                groups.setdefault(slot.info.choice.rsplit(".", 1)[-1], []).append(key)
        open_types = {k for variants in groups.values() if len(variants) > _FEW_VARIANTS for k in variants}
        for key, slot in nd.slots.items():
            if key in open_types and slot.kind == "complex" and slot.info.type not in _COMMON:
                props[key] = {"not": {}}  # walked: the schemas of every data type would cost megabytes
            else:
                props[key] = self.slot(slot)
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False,
                               "minProperties": 1}
        every: list[Schema] = []
        if root:
            props["resourceType"] = {"const": state[0]}
            out["required"] = ["resourceType", *nd.required]
        else:
            if nd.required:
                out["required"] = list(nd.required)
            every.append({"not": {"required": ["id"], "maxProperties": 1}})  # ele-1: an id alone is empty
        single: dict[str, Any] = {}
        for variants in groups.values():  # a choice element takes one type at most
            if len(variants) > _FEW_VARIANTS:  # said in linear size: none of them, or exactly one
                every.append({"anyOf": [{"not": {"anyOf": [{"required": [v]} for v in variants]}},
                                        {"oneOf": [{"required": [v]} for v in variants]}]})
            elif len(variants) > 1:  # checked only when one is there
                for v in variants:
                    single[v] = {"not": {"anyOf": [{"required": [o]} for o in variants if o != v]}}
        if single:
            out["dependentSchemas"] = single
        for base, _min in nd.choices:
            every.append({"anyOf": [{"required": [v]} for v in groups.get(base, ())]})
        every.extend(f for f in (self.constraint(inv, nd, root) for inv in nd.invariants) if f is not None)
        if state == ("Extension", ""):
            # the walk's extension checks say nothing of a URL that is not an R4 core extension's and has no
            # version; any other is left to the walk
            props["url"] = {"allOf": [props["url"], {"pattern": "^[^|]*$", "not": {"enum": sorted(r4().extensions)}}]}
        if every:
            out["allOf"] = every
        return out

    def slot(self, slot: Slot) -> Schema:
        item = self.value(slot)
        if not slot.info.many:
            return item
        out: dict[str, Any] = {"type": "array", "minItems": 1, "items": item}
        if slot.max is not None:
            out["maxItems"] = slot.max
        return out

    def value(self, slot: Slot) -> Schema:
        kind = slot.kind
        if kind == "primitive":
            return self.primitive(slot)
        if kind == "xhtml":
            return self.shared("p:xhtml", _XHTML)
        if kind == "resource":
            return {"not": {}}  # contained and inline resources: walked in Python
        parts: list[Schema] = [self.ref(slot.info.state)]
        t = slot.info.type
        if t in _SYSTEMS:
            parts.append(self.shared("system:absolute", {"properties": {"system": {"pattern": ":"}}}))
        if slot.binding is not None:
            parts.append(self.coded(slot))
        if slot.targets is not None or t == "Reference":
            targets = "any" if slot.targets is None else ",".join(sorted(slot.targets))
            parts.append(self.shared(f"reference:{targets}",
                                     {"properties": {"reference": {"pattern": _reference_pattern(slot.targets)}}}))
        state_has = {(inv.key, inv.expression) for inv in slot.node.invariants}  # said once, in the state's schema
        parts.extend(f for f in (self.constraint(inv, slot.node, False) for inv in slot.invariants
                                 if (inv.key, inv.expression) not in state_has) if f is not None)
        return parts[0] if len(parts) == 1 else {"allOf": parts}

    def primitive(self, slot: Slot) -> dict[str, Any]:
        found = PRIMITIVES.get(slot.info.type)
        if found is None:
            raise _Unsupported(f"primitive type {slot.info.type}")
        schema = self.shared(f"p:{slot.info.type}", found)
        b = slot.binding
        if b is None or b.strength != "required":
            return schema
        if b.codes is None:
            return {"not": {}}  # recorded as not evaluated by the walk
        return {"allOf": [schema, {"enum": sorted({c for codes in b.codes.values() for c in codes})}]}

    def coded(self, slot: Slot) -> dict[str, Any]:
        """A binding on a CodeableConcept, Coding or Quantity, as the walk's check_coded judges it."""
        b = slot.binding
        assert b is not None
        cc = slot.info.type == "CodeableConcept"
        if b.codes is None:
            if b.strength != "required":
                return {}
            has_code: dict[str, Any] = {"required": ["code"]}
            return {"properties": {"coding": {"not": {"contains": has_code}}}} if cc else {"not": has_code}
        systems = sorted(b.codes)
        if b.strength == "required":
            in_set = {"anyOf": [{"properties": {"system": {"const": s}, "code": {"enum": sorted(b.codes[s])}},
                                 "required": ["system", "code"]} for s in systems]}
            if not cc:
                return {"if": {"required": ["code"]}, "then": in_set}
            return {"anyOf": [
                {"required": ["coding"], "properties": {"coding": {"contains": in_set}}},
                {"required": ["coding"], "properties": {"coding": {"items": {"not": {"required": ["code"]}}}}},
                {"not": {"anyOf": [{"required": ["coding"]}, {"required": ["text"]}]}},
            ]}
        each = {"allOf": [{"if": {"properties": {"system": {"const": s}}, "required": ["system", "code"]},
                           "then": {"properties": {"code": {"enum": sorted(b.codes[s])}}}} for s in systems]}
        return {"properties": {"coding": {"items": each}}} if cc else each


@cache
def _reference_pattern(targets: frozenset[str] | None) -> str:
    """References the walk accepts without a finding: urn:uuid:/urn:oid:, or [Type]/[id] of an allowed type."""
    if targets is None or targets & _ANY_RESOURCE or "container" in targets:
        allowed = sorted(r4().resource_types)
    else:
        allowed = sorted(t for t in targets if t in r4().resource_types)
    types = "|".join(allowed) if allowed else "(?!)"
    return f"^(urn:uuid:|urn:oid:|({types})/{_ID}(/_history/{_ID})?$)"


# --- the residual --------------------------------------------------------------------------

_VACUOUS_WITHOUT_CONTAINED = frozenset({"_dom_2", "_dom_3", "_dom_4", "_dom_5"})  # the schema refuses contained


def _decided(inv: Any, state: tuple[str, str], root: bool) -> bool:
    """Whether the schema settles this constraint on an object of a state, so the residual need not check it."""
    if inv.key in SCHEMA_DECIDES and state[0] == "Reference":
        return True
    if getattr(inv.check, "__name__", "") in _VACUOUS_WITHOUT_CONTAINED:
        return True
    return constraint_schema(inv, node(state), root) is not None


_COMPLEX, _INTEGER, _NUMBER, _XHTML_DIV, _PRIMITIVE = range(5)  # a residual entry's kind of work


class StatePlan:
    """A state's residual work: its slots that have some (by JSON name) and its own constraints."""

    __slots__ = ("busy", "entries", "invariants", "keys")

    def __init__(self) -> None:
        # JSON name → (kind of work, repeats, child plan, constraints)
        self.entries: dict[str, tuple[int, bool, StatePlan | None, tuple[Any, ...]]] = {}
        self.invariants: tuple[Any, ...] = ()
        self.busy = False
        self.keys: frozenset[str] = frozenset()  # the entries' names: an object with none of them is clean


def _plan(root: tuple[str, str]) -> StatePlan:
    """Every reachable state's plan; complex entries kept only where something below has work."""
    plans: dict[tuple[str, str], StatePlan] = {}
    raw: dict[tuple[str, str], list[tuple[str, Slot]]] = {}
    todo = [root]
    while todo:
        state = todo.pop()
        if state in plans:
            continue
        plans[state] = sp = StatePlan()
        nd = node(state)
        sp.invariants = tuple(inv for inv in nd.invariants if not _decided(inv, state, state == root))
        raw[state] = list(nd.slots.items())
        todo.extend(s.info.state for _, s in raw[state] if s.kind == "complex")

    def work(slot: Slot) -> tuple[int, tuple[Any, ...], bool]:
        """A slot's kind of work, the constraints it leaves to the residual, whether it has work of its own."""
        if slot.kind == "complex":
            checks = tuple(inv for inv in slot.invariants if not _decided(inv, slot.info.state, False))
            return _COMPLEX, checks, bool(checks)
        if slot.kind == "xhtml":  # txt-1 is the narrative check itself
            return _XHTML_DIV, tuple(x for x in slot.invariants if x.key != "txt-1"), True
        kind = {"integer": _INTEGER, "number": _NUMBER}.get(slot.json_kind, _PRIMITIVE)
        return kind, slot.invariants, kind != _PRIMITIVE or bool(slot.invariants)

    works = {state: [(key, slot, *work(slot)) for key, slot in slots] for state, slots in raw.items()}
    changed = True
    while changed:  # least fixed point over recursive types: busy if any work of its own or below
        changed = False
        for state, sp in plans.items():
            if not sp.busy and (sp.invariants or any(local or (kind == _COMPLEX and plans[slot.info.state].busy)
                                                     for _, slot, kind, _, local in works[state])):
                sp.busy = changed = True
    for state, sp in plans.items():
        for key, slot, kind, checks, local in works[state]:
            child = plans[slot.info.state] if kind == _COMPLEX and plans[slot.info.state].busy else None
            if local or child is not None:
                sp.entries[key] = (kind, slot.info.many, child, checks)
        sp.keys = frozenset(sp.entries)
    return plans[root]


def _holds(invariants: tuple[Any, ...], focus: Any, resource: dict[str, Any]) -> bool:
    for inv in invariants:
        try:
            if not inv.check(focus, resource, resource):
                return False
        except NotEvaluated:
            return False  # the walk records it: let the walk have this resource
    return True


def _clean(obj: dict[str, Any], plan: StatePlan, resource: dict[str, Any]) -> bool:
    """The checks the schema cannot make, along one accepted object; False: walk the resource instead."""
    entries = plan.entries
    for key, v in obj.items():
        entry = entries.get(key)
        if entry is None:
            continue
        kind, many, child, own = entry
        for item in (v if many else (v,)):
            if kind == _COMPLEX:
                if child is not None and (child.invariants or not child.keys.isdisjoint(item)) and \
                        not _clean(item, child, resource):
                    return False
            elif kind == _INTEGER:
                if type(item) is not int:
                    return False  # 1.0: the schema's integer, not FHIR's
            elif kind == _NUMBER:
                if type(item) is not float and type(item) is not int:
                    return False  # a Decimal (or other number object) handed in by code: the walk refuses it
            elif kind == _XHTML_DIV and narrative_problems(item):
                return False
            if own and not _holds(own, item, resource):
                return False
    return not plan.invariants or _holds(plan.invariants, obj, resource)


# --- the accept path -----------------------------------------------------------------------

Acceptor = Callable[[dict[str, Any]], bool]


def schema_of(rtype: str) -> dict[str, Any]:
    """The JSON Schema of one resource type (also for review and tests)."""
    builder = _Builder()
    top = builder.ref((rtype, ""), root=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **top, "$defs": builder.defs}


@lru_cache(maxsize=24)
def acceptor(rtype: str) -> tuple[Acceptor, StatePlan] | None:
    """The compiled schema's test and the residual plan of a resource type (None: always walk).

    A compiled schema holds a few MiB, so only the types most recently used are kept (an export is
    read type by type; a run over more than 24 types interleaved only compiles some again)."""
    import jsonschema_rs  # noqa: PLC0415 - a native module: loaded by the first resource checked

    try:
        schema = schema_of(rtype)
    except _Unsupported:
        return None
    return jsonschema_rs.validator_for(schema).is_valid, _plan((rtype, ""))


def accepted(resource: Any) -> bool:
    """Whether the accept path clears this resource: the walk would find nothing, not even a constraint
    it cannot evaluate."""
    rtype = resource.get("resourceType") if type(resource) is dict else None
    return type(rtype) is str and rtype in r4().resource_types and _accepted(rtype, resource)


def _accepted(rtype: str, resource: dict[str, Any]) -> bool:
    found = acceptor(rtype)
    if found is None:
        return False
    test, plan = found
    try:
        ok = test(resource)
    except (ValueError, TypeError, OverflowError):
        return False  # not JSON-shaped (a key that is not a string, …): the walk says what is wrong
    return ok and _clean(resource, plan, resource)


# Resources of a type walked before its schema is built. Building and compiling one costs ~15-25 ms
# (the first ~0.1 s), which the accept path earns back after ~400 resources of the type; walking the
# first 500 of each spares a small run (a supplier's CI, the demo: a few hundred of each type) every
# build. A run over an export of LARGE_EXPORT bytes or more (the runner and the --jobs workers say so
# with ``sized_for``) builds each type's schema at its first resource instead: there, the walked
# warm-up of every type would cost ~0.4 s, each worker paying its own.
WARM_UP = 500
LARGE_EXPORT = 8_000_000
_walked: dict[str, int] = {}


class _Run:
    warm_up = WARM_UP  # for the run in hand


_run = _Run()


@contextlib.contextmanager
def sized_for(export_bytes: int) -> Iterator[None]:
    """The warm-up for a run over an export of this size, for the length of the run."""
    before = _run.warm_up
    _run.warm_up = 0 if export_bytes >= LARGE_EXPORT else WARM_UP
    try:
        yield
    finally:
        _run.warm_up = before


def clears(resource: Any) -> bool:
    """Whether the accept path clears this resource once its type is warmed up (the walk would find
    nothing); False says nothing: walk it."""
    if _ON:
        rtype = resource.get("resourceType") if type(resource) is dict else None
        if type(rtype) is str and rtype in r4().resource_types:  # counted only for R4 types: a bounded table
            n = _walked.get(rtype, 0)
            if n >= _run.warm_up:
                return _accepted(rtype, resource)
            _walked[rtype] = n + 1
    return False


def validate_fast(resource: Any, path: str = "") -> Outcome:
    """Same outcome as :func:`harness.fhir.validator.validate`, through the accept path when it can."""
    if not path and clears(resource):
        return Outcome()
    return validate(resource, path)


_ON = os.environ.get(ENV_SWITCH, "1") != "0"
