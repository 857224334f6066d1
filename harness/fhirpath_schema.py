"""FHIRPath as JSON Schema: a schema an instance can only satisfy when an expression is true on it.

The rules' and constraints' FHIRPath runs in Python, once per resource (or element). For the
subset :mod:`harness.fhirpath` evaluates natively, this module writes, for a boolean expression,
a JSON Schema *sufficient* for its result: an instance valid against ``true_schema(e)`` is one
on which the native evaluator gives ``[True]`` — no fallback to fhirpathpy, no error. The
converse need not hold: an instance the schema refuses may still make the expression true, and
its rule or constraint is then evaluated as before. So a compiled schema (jsonschema-rs) can
clear a resource for many rules at once, and never clears one a rule would report.

It mirrors the native semantics node for node (the closures of :mod:`harness.fhirpath`, which
the generated functions of :mod:`harness.fhirpath_gen` repeat):

- a member step skips items that are not objects and values that are null, flattens arrays, and
  hands over to fhirpathpy when the object has the ``_`` companion of the name (the schema
  forbids the companions); a choice name (``value``, ``medication``) resolves to the one variant
  present — the schema requires the others absent, so which one wins does not matter;
- ``where``, ``exists``, ``all`` test a criterion per item, true only for ``[True]``;
- ``=``/``!=`` against a string or boolean literal need exactly one item of that JSON type;
  string tests (``startsWith``…) exactly one string; a union refuses decimals (the schema: numbers);
- ``and``/``or``/``implies``/``xor``/``not()`` follow FHIRPath's three-valued logic, including
  which operand is not evaluated at all.

For each boolean node it builds three schemas — evaluates to true, to false, to empty — each
with the conditions under which evaluation completes without a hand-over; a node it cannot
express gives ``None`` and so does any expression built on it (an alternative that is ``None``
is dropped: fewer alternatives only make a schema stricter).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from harness import fhirpath as fp
from harness.fhir.model import r4

Schema = dict[str, Any] | bool
Maybe = Schema | None
Node = dict[str, Any]

NEVER: Schema = False
ALWAYS: Schema = True
_NOT_NULL: Schema = {"not": {"type": "null"}}
_SINGLE: Schema = {"not": {"type": ["array", "null"]}}
_NULL = frozenset({"null"})
_ARRAY_NULL = frozenset({"array", "null"})
_NOT_NUMBER: Schema = {"not": {"type": "number"}}  # a union hands a decimal to fhirpathpy; 1.0 looks like 1


def all_of(*parts: Maybe) -> Maybe:
    """Every part (None if any part cannot be said); parts with no keyword in common become one object."""
    kept: list[Schema] = []
    for p in parts:
        if p is None:
            return None
        if p is False:
            return False
        if p is not True and p not in kept:
            kept.append(p)
    merged: list[dict[str, Any]] = []
    for p in kept:
        assert isinstance(p, dict)
        into = next((m for m in merged if _mergeable(m, p)), None)
        if into is None:
            merged.append(dict(p))
        else:
            properties = {**into.get("properties", {}), **p.get("properties", {})}
            into.update(p)
            if properties:
                into["properties"] = properties
    if not merged:
        return True
    return merged[0] if len(merged) == 1 else {"allOf": merged}


def _mergeable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two schemas say the same as one object: no keyword in common but ``properties``, and
    those about different names."""
    shared = a.keys() & b.keys()
    return not shared or (shared == {"properties"} and a["properties"].keys().isdisjoint(b["properties"]))


def _types(s: Maybe) -> frozenset[str] | None:
    """The JSON types a schema admits at most, when it says (``type``), else None."""
    if isinstance(s, dict) and "type" in s:
        t = s["type"]
        return frozenset([t] if isinstance(t, str) else t)
    return None


def _excluding(excluded: frozenset[str], guard: Schema, s: Maybe) -> Maybe:
    """``s`` and not of the excluded types (the guard says so only where ``s`` does not already)."""
    types = _types(s)
    if types is not None and types.isdisjoint(excluded):
        return s
    return all_of(guard, s)


def any_of(*parts: Maybe) -> Maybe:
    """Some part (parts that cannot be said are left out: that only makes the schema stricter)."""
    kept: list[Schema] = []
    for p in parts:
        if p is None or p is False:
            continue
        if p is True:
            return True
        if p not in kept:
            kept.append(p)
    if not kept:
        return False
    return kept[0] if len(kept) == 1 else {"anyOf": kept}


def char_class(chars: str, negate: bool = False) -> str:
    """A regular-expression class of exactly these characters, meaning the same in Rust and Python."""
    body = "".join("\\" + c if c in "\\]^-[" else c for c in chars)
    return f"[{'^' if negate else ''}{body}]"


def literal_pattern(text: str) -> str:
    """A regular expression (Rust and Python alike) matching ``text`` literally."""
    return "".join(c if c.isascii() and c.isalnum() else char_class(c) for c in text)


# --- collections: what a path reaches from its focus ---------------------------------------------

class Nav(ABC):
    """A path from the focus. Each method gives a schema on the focus item (None: cannot be said)
    that also holds only when evaluating the path completes natively."""

    @abstractmethod
    def every(self, s: Maybe) -> Maybe:
        """Every item reached satisfies ``s`` (true when none is)."""

    @abstractmethod
    def some(self, s: Maybe) -> Maybe:
        """At least one item reached satisfies ``s``."""

    @abstractmethod
    def one(self, s: Maybe) -> Maybe:
        """Exactly one item is reached, and it satisfies ``s``."""

    def none(self) -> Maybe:
        """No item is reached."""
        return self.every(NEVER)

    def safe(self) -> Maybe:
        """Evaluating the path completes natively (whatever it reaches)."""
        return self.every(ALWAYS)


class Focus(Nav):
    """The focus itself (``$this``, or the start of a path): exactly one item."""

    def every(self, s: Maybe) -> Maybe:
        return s

    def some(self, s: Maybe) -> Maybe:
        return s

    def one(self, s: Maybe) -> Maybe:
        return s


@dataclass(frozen=True)
class Member(Nav):
    base: Nav
    name: str

    def keys(self) -> list[str]:
        suffixes = r4().choice_suffixes.get(self.name)
        return [self.name, *(self.name + s for s in sorted(suffixes or ()))]

    def guard(self) -> Schema:
        """No ``_`` companion on an object the step visits (which would hand over to fhirpathpy)."""
        return {"properties": {"_" + k: False for k in self.keys()}}

    def _at(self, value: Maybe) -> Maybe:
        """The object has exactly one of the candidate keys, whose value satisfies ``value``."""
        if value is None:
            return None
        keys = self.keys()
        return any_of(*({"type": "object", "required": [k],
                         "properties": {k: value, **{o: False for o in keys if o != k}}} for k in keys))

    def every(self, s: Maybe) -> Maybe:
        if s is None:
            return None
        each = any_of({"type": "null"}, s)
        value = {"if": {"type": "array"}, "then": {"items": each}, "else": each}
        return self.base.every(all_of(self.guard(), {"properties": dict.fromkeys(self.keys(), value)}))

    def some(self, s: Maybe) -> Maybe:
        if s is None:
            return None
        value = any_of({"type": "array", "contains": _excluding(_NULL, _NOT_NULL, s)},
                       _excluding(_ARRAY_NULL, _SINGLE, s))
        return all_of(self.base.every(self.guard()), self.base.some(self._at(value)))

    def one(self, s: Maybe) -> Maybe:
        if s is None:
            return None
        value = any_of({"type": "array", "minItems": 1, "maxItems": 1, "items": _excluding(_NULL, _NOT_NULL, s)},
                       _excluding(_ARRAY_NULL, _SINGLE, s))
        return self.base.one(all_of(self.guard(), self._at(value)))


@dataclass(frozen=True)
class Where(Nav):
    base: Nav
    criterion: Node

    def every(self, s: Maybe) -> Maybe:
        t, f, z = truth(self.criterion)
        return self.base.every(any_of(f, z, all_of(t, s)))

    def some(self, s: Maybe) -> Maybe:
        t, f, z = truth(self.criterion)
        return all_of(self.base.every(any_of(t, f, z)), self.base.some(all_of(t, s)))

    def one(self, s: Maybe) -> Maybe:
        t, _f, _z = truth(self.criterion)
        return self.base.one(all_of(t, s))


@dataclass(frozen=True)
class Union(Nav):
    left: Nav
    right: Nav

    def every(self, s: Maybe) -> Maybe:
        each = all_of(_NOT_NUMBER, s)
        return all_of(self.left.every(each), self.right.every(each))

    def some(self, s: Maybe) -> Maybe:
        return all_of(self.left.every(_NOT_NUMBER), self.right.every(_NOT_NUMBER),
                      any_of(self.left.some(s), self.right.some(s)))

    def one(self, s: Maybe) -> Maybe:
        each = all_of(_NOT_NUMBER, s)
        return any_of(all_of(self.left.one(each), self.right.none()),
                      all_of(self.left.none(), self.right.one(each)))


def _function(node: Node) -> tuple[str, list[Node]]:
    kids = fp._kids(fp._kids(node)[0])
    return fp._identifier(kids[0]), (fp._kids(kids[1]) if len(kids) > 1 else [])


def navigation(node: Node) -> Nav | None:
    """The path a node is, or None for anything but member steps, ``where``, ``$this`` and unions."""
    node = fp._unwrap(node)
    ntype = node.get("type")
    if ntype == "ThisInvocation":
        return Focus() if node.get("terminalNodeText") == ["$this"] else None
    if ntype == "MemberInvocation":
        return _member(Focus(), node)
    if ntype == "UnionExpression":
        left, right = (navigation(k) for k in fp._kids(node))
        return Union(left, right) if left is not None and right is not None else None
    if ntype == "InvocationExpression":
        left_node, right_node = fp._kids(node)
        base = navigation(left_node)
        if base is None:
            return None
        if right_node.get("type") == "MemberInvocation":
            return _member(base, right_node)
        if right_node.get("type") == "FunctionInvocation":
            name, params = _function(right_node)
            if name == "where" and len(params) == 1:
                return Where(base, params[0])
    return None


def _member(base: Nav, node: Node) -> Nav | None:
    name = fp._identifier(fp._kids(node)[0])
    if name[:1].isupper():
        return None  # a type filter (``Patient``), not a member
    return Member(base, name)


# --- booleans: true, false, empty -------------------------------------------------------------

Truth = tuple[Maybe, Maybe, Maybe]
_UNKNOWN: Truth = (None, None, None)


def truth(node: Node) -> Truth:
    """Schemas under which the node evaluates to ``[True]``, to ``[False]`` and to ``[]``."""
    return _truth(_Key(node))


@dataclass(frozen=True)
class _Key:
    """A parsed node, hashable by identity (for the cache): trees are built once and kept."""

    node: Node

    def __hash__(self) -> int:
        return id(self.node)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.node is self.node


@cache
def _truth(key: _Key) -> Truth:
    node = fp._unwrap(key.node)
    ntype = node.get("type")
    kids = fp._kids(node)
    if ntype == "BooleanLiteral":
        value = node["terminalNodeText"][0] == "true"
        return (ALWAYS, NEVER, NEVER) if value else (NEVER, ALWAYS, NEVER)
    if ntype in ("AndExpression", "OrExpression", "ImpliesExpression"):
        return _logic(node["terminalNodeText"][0], truth(kids[0]), truth(kids[1]))
    if ntype == "EqualityExpression":
        return _equality(node)
    if ntype == "FunctionInvocation":
        return _call(Focus(), node)
    if ntype == "InvocationExpression" and kids[1].get("type") == "FunctionInvocation":
        name, _params = _function(kids[1])
        if name == "not":
            inner = fp._unwrap(kids[0])
            if navigation(inner) is None:
                t, f, z = truth(inner)
                return f, t, z
        base = navigation(kids[0])
        if base is None:
            return _UNKNOWN
        found = _call(base, kids[1])
        if found is not _UNKNOWN:
            return found
    nav = navigation(node)  # a path read as a boolean: one boolean item, or nothing
    if nav is None:
        return _UNKNOWN
    return nav.one({"type": "boolean", "const": True}), nav.one({"type": "boolean", "const": False}), nav.none()


def _logic(op: str, a: Truth, b: Truth) -> Truth:
    at, af, az = a
    bt, bf, bz = b
    if op == "and":  # a false decides alone; b is evaluated otherwise
        return (all_of(at, bt),
                any_of(af, all_of(any_of(at, az), bf)),
                any_of(all_of(at, bz), all_of(az, bt), all_of(az, bz)))
    if op == "or":  # a true decides alone
        return (any_of(at, all_of(any_of(af, az), bt)),
                all_of(af, bf),
                any_of(all_of(af, bz), all_of(az, bf), all_of(az, bz)))
    if op == "implies":  # a false decides alone
        return (any_of(af, all_of(any_of(at, az), bt)),
                all_of(at, bf),
                any_of(all_of(at, bz), all_of(az, any_of(bf, bz))))
    if op == "xor":  # both always evaluated
        return (any_of(all_of(at, bf), all_of(af, bt)),
                any_of(all_of(at, bt), all_of(af, bf)),
                any_of(all_of(az, any_of(bt, bf, bz)), all_of(any_of(at, af), bz)))
    return _UNKNOWN


def _literal(node: Node) -> dict[str, Any] | None:
    """The schema of the one item equal to a string or boolean literal (numbers: None, 1.0 looks like 1)."""
    node = fp._unwrap(node)
    text = node.get("terminalNodeText") or [""]
    if node.get("type") == "BooleanLiteral":
        return {"type": "boolean", "const": text[0] == "true"}
    if node.get("type") == "StringLiteral":
        body = text[0][1:-1]
        if "\\" in body or fp._DATE_LIKE.match(body):
            return None  # the native compiler leaves these to fhirpathpy
        return {"type": "string", "const": body}
    return None


def _equality(node: Node) -> Truth:
    op = node["terminalNodeText"][0]
    left, right = fp._kids(node)
    nav, lit = navigation(left), _literal(right)
    if nav is None or lit is None:
        nav, lit = navigation(right), _literal(left)
    if nav is None or lit is None or op not in ("=", "!="):
        return _UNKNOWN
    differs = {"type": lit["type"], "not": {"const": lit["const"]}}
    same, other = nav.one(lit), nav.one(differs)
    return (same, other, nav.none()) if op == "=" else (other, same, nav.none())


_STRING_PATTERNS = {"startsWith": "^{}", "endsWith": "{}$", "contains": "{}"}


def _call(base: Nav, node: Node) -> Truth:
    """A function on a path: exists, empty, all, not, hasValue and the string tests."""
    name, params = _function(node)
    if name == "exists" and not params:
        return base.some(ALWAYS), base.none(), NEVER
    if name == "empty" and not params:
        return base.none(), base.some(ALWAYS), NEVER
    if name in ("exists", "all") and len(params) == 1:
        t, f, z = truth(params[0])
        failing = any_of(f, z)
        safe = base.every(any_of(t, f, z))
        if name == "exists":  # stops at the first item that passes
            return all_of(safe, base.some(t)), base.every(failing), NEVER
        return base.every(t), all_of(safe, base.some(failing)), NEVER  # stops at the first that fails
    if name == "not" and not params:
        return base.one({"type": "boolean", "const": False}), base.one({"type": "boolean", "const": True}), \
            base.none()
    if name == "hasValue" and not params:
        return base.one({"not": {"type": ["object", "array"]}}), \
            any_of(base.none(), base.one({"type": ["object", "array"]})), NEVER
    if name in _STRING_PATTERNS and len(params) == 1:
        arg = fp._literal_string(params[0])
        if arg is None:
            return _UNKNOWN
        test = {"type": "string", "pattern": _STRING_PATTERNS[name].format(literal_pattern(arg))}
        return base.one(test), base.one({"type": "string", "not": test}), base.none()
    return _UNKNOWN


# --- entry points -------------------------------------------------------------------------------

def _native(expression: str) -> Node | None:
    """The parsed tree, when the expression runs natively (else fhirpathpy does, and no schema is given)."""
    try:
        compiled = fp.compile_path(expression)
    except fp.FHIRPathSyntaxError:
        return None
    if not compiled.native:
        return None
    return fp.parse_strict(expression)


_TRUE, _FALSE, _EMPTY = range(3)  # positions in a node's Truth


def _evaluating_to(expression: str, *outcomes: int) -> Schema | None:
    """A schema on the focus under which the expression evaluates natively to one of the outcomes."""
    tree = _native(expression)
    if tree is None:
        return None
    found = truth(tree)
    return _useful(any_of(*(found[o] for o in outcomes)))


@cache
def true_schema(expression: str) -> Schema | None:
    """A schema on the focus under which the expression evaluates natively to ``[True]`` (None: none found)."""
    return _evaluating_to(expression, _TRUE)


@cache
def true_or_empty_schema(expression: str) -> Schema | None:
    """As :func:`true_schema`, for ``[True]`` or ``[]``."""
    return _evaluating_to(expression, _TRUE, _EMPTY)


@cache
def not_true_schema(expression: str) -> Schema | None:
    """As :func:`true_schema`, for ``[False]`` or ``[]`` (a rule's ``where`` that does not hold)."""
    return _evaluating_to(expression, _FALSE, _EMPTY)


@cache
def path_of(expression: str) -> Nav | None:
    """The expression as a path (for a rule's ``select``), when it runs natively and is one."""
    tree = _native(expression)
    return None if tree is None else navigation(tree)


def count_schema(nav: Nav, low: int, high: int | None) -> Schema | None:
    """The path reaches between ``low`` and ``high`` items (None: unbounded), said for 0 or 1 item only."""
    if low == 0 and high is None:
        return _useful(nav.safe())
    options: list[Maybe] = []
    if low == 0:
        options.append(nav.none())
    if low <= 1 and (high is None or high >= 1):
        options.append(nav.one(ALWAYS))
    return _useful(any_of(*options))


def _useful(schema: Maybe) -> Schema | None:
    """None for a schema nothing satisfies (it would never clear anything)."""
    return None if schema is None or schema is False else schema


def combined(schemas: Iterable[Schema]) -> dict[str, Any]:
    """One draft 2020-12 schema requiring all of them, each part written once (:func:`interned`).

    A part may be a whole document with ``$defs`` of its own: they are renamed apart, and parts with
    the same definitions (every must-support rule's) share one copy, compiled once."""
    defs: dict[str, Any] = {}
    prefixes: dict[bytes, str] = {}
    parts = []
    for n, schema in enumerate(schemas):
        own = schema.get("$defs") if isinstance(schema, dict) else None
        key = orjson.dumps(own, option=orjson.OPT_SORT_KEYS)
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = prefixes[key] = f"{n}."
            for name, sub in (own or {}).items():
                defs[prefix + name] = _relocated(sub, prefix)
        parts.append(_relocated(schema, prefix))
    body = interned({"allOf": parts}, defs, "s")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body, "$defs": defs}


def _relocated(schema: Schema, prefix: str) -> Schema:
    """A schema (without the document's ``$schema`` and ``$defs``) with its references to the
    document's definitions renamed under ``prefix``."""
    if not isinstance(schema, dict):
        return schema

    def move(s: Any) -> Any:
        if not isinstance(s, dict):
            return s
        out = _rebuild(s, move)
        ref = out.get("$ref")
        if ref is not None:
            if not (isinstance(ref, str) and ref.startswith("#/$defs/")):
                raise ValueError(f"a reference that cannot be moved into a combined schema: {ref!r}")
            out["$ref"] = f"#/$defs/{prefix}{ref[len('#/$defs/'):]}"
        return out

    return move({k: v for k, v in schema.items() if k not in ("$schema", "$defs")})  # type: ignore[no-any-return]


def compile_screen(schemas: list[Schema]) -> Callable[[Any], bool]:
    """One compiled test of all the schemas; False for anything it cannot judge (not JSON-shaped)."""
    import jsonschema_rs  # noqa: PLC0415 - a native module: loaded by the first screen compiled

    test = jsonschema_rs.validator_for(combined(schemas)).is_valid

    def screen(instance: Any) -> bool:
        try:
            return bool(test(instance))
        except (ValueError, TypeError, OverflowError):
            return False
    return screen


_LARGE = 160  # characters of JSON: a part at least this long, written twice, becomes a definition


_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_ONE = frozenset({"not", "if", "then", "else", "items", "contains", "additionalProperties",
                         "propertyNames", "unevaluatedItems", "unevaluatedProperties"})


def _rebuild(s: dict[str, Any], visit: Callable[[Any], Any]) -> dict[str, Any]:
    """A copy of a schema with ``visit`` applied to each of its subschemas (never to a value: const, enum…)."""
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in _SCHEMA_MAPS:
            out[k] = {name: visit(sub) for name, sub in v.items()}
        elif k in _SCHEMA_LISTS:
            out[k] = [visit(sub) for sub in v]
        elif k in _SCHEMA_ONE:
            out[k] = visit(v)
        else:
            out[k] = v
    return out


def _subschemas(s: dict[str, Any]) -> Iterator[Any]:
    for k, v in s.items():
        if k in _SCHEMA_MAPS:
            yield from v.values()
        elif k in _SCHEMA_LISTS:
            yield from v
        elif k in _SCHEMA_ONE:
            yield v


def interned(schema: Schema, defs: dict[str, Any], prefix: str) -> Any:
    """``schema`` with every large part that occurs more than once replaced by a reference to one
    definition in ``defs`` (which the caller puts under ``$defs`` at the document's root).

    The schemas above repeat the conditions of a subexpression in several places (its truth and
    its falsity under ``or``, its safety under ``where``); jsonschema-rs compiles what is written
    each time it is written, and a definition once.
    """
    counts: dict[bytes, int] = {}
    texts: dict[int, bytes] = {}  # by object: the schema is not changed while this runs

    def text(s: Any) -> bytes:
        found = texts.get(id(s))
        if found is None:
            found = texts[id(s)] = orjson.dumps(s, option=orjson.OPT_SORT_KEYS)
        return found

    def count(s: Any) -> None:
        if isinstance(s, dict):
            key = text(s)
            counts[key] = counts.get(key, 0) + 1
            if counts[key] == 1:
                for sub in _subschemas(s):
                    count(sub)

    names: dict[bytes, str] = {}

    def rewrite(s: Any, top: bool = False) -> Any:
        if not isinstance(s, dict):
            return s
        key = text(s)
        if not top and counts.get(key, 0) > 1 and len(key) >= _LARGE:
            name = names.get(key)
            if name is None:
                name = names[key] = f"{prefix}{len(defs)}"
                defs[name] = True  # taken before the body is written (its parts take the next names)
                defs[name] = rewrite(s, top=True)
            return {"$ref": f"#/$defs/{name}"}
        return _rebuild(s, rewrite)

    count(schema)
    return rewrite(schema, top=True)
