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

What a schema cannot say at all is the *residual*: the other constraints (compiled as for the walk),
the narrative's XHTML, integers given as ``1.0`` (JSON Schema counts them as integers; FHIR does not)
and numbers that are not JSON's. Each is a keyword of the schema's own (``x-fhir-holds``,
``x-fhir-narrative``, ``x-fhir-integer``, ``x-fhir-decimal``) that jsonschema-rs calls back into
Python on the values it is written for, so only the elements present pay for it; each sits where it
is always evaluated (never under a branch or a ``not``: a test checks every resource type). If the
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
import threading
from abc import ABC, abstractmethod
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
        residual = tuple(inv for inv in nd.invariants if not _decided(inv, state, root))
        if residual:
            every.append(_holds_keyword(residual))
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
        if kind == "xhtml":  # txt-1 is the narrative check itself
            div = self.shared("p:xhtml", {**_XHTML, NARRATIVE: True})
            others = tuple(inv for inv in slot.invariants if inv.key != "txt-1")
            return {"allOf": [div, _holds_keyword(others)]} if others else div
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
        residual = tuple(inv for inv in slot.invariants if not _decided(inv, slot.info.state, False))
        if residual:
            parts.append(_holds_keyword(residual))
        return parts[0] if len(parts) == 1 else {"allOf": parts}

    def primitive(self, slot: Slot) -> dict[str, Any]:
        found = PRIMITIVES.get(slot.info.type)
        if found is None:
            raise _Unsupported(f"primitive type {slot.info.type}")
        number = _NUMBER_KEYWORDS.get(slot.json_kind)
        parts = [self.shared(f"p:{slot.info.type}", {**found, number: True} if number else found)]
        b = slot.binding
        if b is not None and b.strength == "required":
            if b.codes is None:
                return {"not": {}}  # recorded as not evaluated by the walk
            parts.append({"enum": sorted({c for codes in b.codes.values() for c in codes})})
        if slot.invariants:
            parts.append(_holds_keyword(tuple(slot.invariants)))
        return parts[0] if len(parts) == 1 else {"allOf": parts}

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


# --- the residual: checks the schema cannot make, as keywords of its own ---------------------

_VACUOUS_WITHOUT_CONTAINED = frozenset({"_dom_2", "_dom_3", "_dom_4", "_dom_5"})  # the schema refuses contained


def _decided(inv: Any, state: tuple[str, str], root: bool) -> bool:
    """Whether the schema settles this constraint on an object of a state, so the residual need not check it."""
    if inv.key in SCHEMA_DECIDES and state[0] == "Reference":
        return True
    if getattr(inv.check, "__name__", "") in _VACUOUS_WITHOUT_CONTAINED:
        return True
    return constraint_schema(inv, node(state), root) is not None


def _holds(invariants: tuple[Any, ...], focus: Any, resource: dict[str, Any]) -> bool:
    for inv in invariants:
        try:
            if not inv.check(focus, resource, resource):
                return False
        except NotEvaluated:
            return False  # the walk records it: let the walk have this resource
    return True


HOLDS, INTEGER, DECIMAL, NARRATIVE = "x-fhir-holds", "x-fhir-integer", "x-fhir-decimal", "x-fhir-narrative"


class _Root(threading.local):
    resource: Any = None  # the resource the accept schema is running on, in this thread


_root = _Root()
_named: dict[str, tuple[Any, ...]] = {}  # a residual keyword's constraints, by the name its schema gives them
_names: dict[tuple[int, ...], str] = {}
_naming = threading.Lock()


def _holds_keyword(invariants: tuple[Any, ...]) -> dict[str, Any]:
    """The schema keyword that runs these compiled constraints on the value it meets."""
    key = tuple(id(inv) for inv in invariants)
    with _naming:
        name = _names.get(key)
        if name is None:
            name = _names[key] = f"c{len(_named)}"
            _named[name] = invariants  # held for the process: the ids above stay theirs
    return {HOLDS: name}


class _Keyword(ABC):
    """A residual check jsonschema-rs calls where its keyword meets a value (it builds one per place the
    keyword is written); raising refuses the resource (any exception does), which the walk then judges."""

    def __init__(self, parent_schema: Any, value: Any, schema_path: Any) -> None:
        self.value = value  # what the schema gives the keyword

    def validate(self, instance: Any) -> None:
        if not self.ok(instance):
            raise ValueError("left to the walk")

    @abstractmethod
    def ok(self, instance: Any) -> bool:
        """Whether the value passes the check."""


class _Holds(_Keyword):
    """The named constraints hold, evaluated as the walk evaluates them (%resource: the resource checked)."""

    def __init__(self, parent_schema: Any, value: Any, schema_path: Any) -> None:
        super().__init__(parent_schema, value, schema_path)
        self.invariants = _named[value]

    def ok(self, instance: Any) -> bool:
        return _holds(self.invariants, instance, _root.resource)


class _Integer(_Keyword):
    def ok(self, instance: Any) -> bool:
        return type(instance) is int  # 1.0: JSON Schema's integer, not FHIR's


class _Decimal(_Keyword):
    def ok(self, instance: Any) -> bool:
        return type(instance) is float or type(instance) is int  # a Decimal handed in by code: the walk refuses it


class _Narrative(_Keyword):
    def ok(self, instance: Any) -> bool:
        return not narrative_problems(instance)  # txt-1: well-formed XHTML, nothing FHIR forbids


KEYWORDS: dict[str, Any] = {HOLDS: _Holds, INTEGER: _Integer, DECIMAL: _Decimal, NARRATIVE: _Narrative}
_NUMBER_KEYWORDS = {"integer": INTEGER, "number": DECIMAL}


# --- the accept path -----------------------------------------------------------------------

Acceptor = Callable[[dict[str, Any]], bool]


def schema_of(rtype: str) -> dict[str, Any]:
    """The JSON Schema of one resource type (also for review and tests); compile it with ``compiled``."""
    builder = _Builder()
    top = builder.ref((rtype, ""), root=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **top, "$defs": builder.defs}


def compiled(schema: dict[str, Any]) -> Acceptor:
    """An accept schema compiled with its residual keywords (without them it would accept too much)."""
    import jsonschema_rs  # noqa: PLC0415 - a native module: loaded by the first resource checked

    test: Acceptor = jsonschema_rs.validator_for(schema, keywords=KEYWORDS).is_valid
    return test


@lru_cache(maxsize=24)
def acceptor(rtype: str) -> Acceptor | None:
    """The compiled schema's test of a resource type (None: always walk).

    A compiled schema holds a few MiB, so only the types most recently used are kept (an export is
    read type by type; a run over more than 24 types interleaved only compiles some again)."""
    try:
        return compiled(schema_of(rtype))
    except _Unsupported:
        return None


def accepted(resource: Any) -> bool:
    """Whether the accept path clears this resource: the walk would find nothing, not even a constraint
    it cannot evaluate."""
    rtype = resource.get("resourceType") if type(resource) is dict else None
    return type(rtype) is str and rtype in r4().resource_types and _accepted(rtype, resource)


def _accepted(rtype: str, resource: dict[str, Any]) -> bool:
    test = acceptor(rtype)
    if test is None:
        return False
    _root.resource = resource
    try:
        return bool(test(resource))
    except (ValueError, TypeError, OverflowError):
        return False  # not JSON-shaped (a key that is not a string, …): the walk says what is wrong
    finally:
        _root.resource = None


# Resources of a type walked before its schema is built. Building and compiling one costs ~15-25 ms
# (the first ~0.1 s), which the accept path earns back after ~400 resources of the type; walking the
# first 500 of each spares a small run (a supplier's CI, the demo: a few hundred of each type) every
# build. A run over an export of LARGE_EXPORT bytes or more (the runner and the --jobs workers say so
# with ``sized_for``) builds each type's schema at its first resource instead: there, the walked
# warm-up of every type would cost ~0.4 s, each worker paying its own.
WARM_UP = 500
LARGE_EXPORT = 8_000_000
_walked: dict[str, int] = {}


class _Run(threading.local):
    warm_up = WARM_UP  # for the run in hand, in this thread (runs in threads each have their own)


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
