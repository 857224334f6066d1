"""The validator's hot path as generated Python: one function per compiled element state.

A :class:`~harness.fhir.validator.Node` becomes the source of one function that looks up each
element the state defines (``obj.get("status")``), checks it inline — JSON type, array or not,
empty values, format, required-binding membership — and walks into child states by calling
their generated functions. What is rare (unknown keys, primitive ``_`` companions, nulls,
narratives, contained resources, a value of the wrong shape) is handed to the validator's
general code, so both give the same findings. Each function is compiled once per process with
``compile()``; its source can be read back (``source_of``) for review.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.fhir.invariants import NotEvaluated
from harness.fhir.paths import render
from harness.fhir.primitives import MAX_STRING
from harness.fhir.validator import (
    EMPTY_ELEMENT,
    Slot,
    check_code,
    check_invariants,
    invariant_failed,
    json_name,
    other_keys,
    post_complex,
)
from harness.fhir.validator import check_value as value

if TYPE_CHECKING:
    from harness.fhir.validator import Node

Walk = Callable[[dict[str, Any], Any, bool, Any, tuple[str, ...]], None]
_SOURCES: dict[int, str] = {}
_TRIVIAL = frozenset({"string", "markdown"})
_MANY_VARIANTS = 4
_KIND_TEST = {"string": "type({v}) is str", "boolean": "type({v}) is bool", "integer": "type({v}) is int",
              "number": "(type({v}) is int or type({v}) is float)"}


def source_of(walk: Walk) -> str:
    """The generated source of a walk function (for review and tests)."""
    return _SOURCES.get(id(walk), "")


def _trampoline(name: str, slot: Slot, env: dict[str, Any]) -> Walk:
    """Calls the child state's walk, compiling it on first use (types can be recursive)."""
    def first(obj: dict[str, Any], path: Any, is_resource: bool, ctx: Any, where: tuple[str, ...]) -> None:
        walk = slot.node.walk
        env[name] = walk
        walk(obj, path, is_resource, ctx, where)
    return first


class _Writer:
    def __init__(self, nd: Node) -> None:
        self.nd = nd
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "other_keys": other_keys, "value": value, "post_complex": post_complex, "check_code": check_code,
            "check_invariants": check_invariants, "json_name": json_name, "EMPTY": EMPTY_ELEMENT,
            "invariant_failed": invariant_failed, "NotEvaluated": NotEvaluated,
            "MAX_STRING": MAX_STRING, "NODE": nd, "too_many": _too_many, "render_req": _render_req,
            "render_choice": _render_choice,
        }

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def const(self, name: str, obj: Any) -> str:
        self.env[name] = obj
        return name

    def primitive(self, d: int, slot: Slot, j: int, v: str, p: str) -> None:
        info = slot.info
        kind = slot.json_kind
        self.emit(d, f"if {_KIND_TEST[kind].format(v=v)}:")
        if kind == "string":
            if info.type != "string":
                self.emit(d + 1, f"if not {v} or {v}.isspace():")
                self.emit(d + 2, f"out.add('structure', 'empty or blank value: omit the element instead', {p}, "
                                 "'value')")
            else:
                self.emit(d + 1, f"if not {v}:")
                self.emit(d + 2, f"out.add('structure', 'empty string: omit the element instead', {p}, 'value')")
            self.emit(d + 1, "else:")
            d2 = d + 2
            if info.type in _TRIVIAL:
                self.emit(d2, f"if len({v}) > MAX_STRING:")
                self.emit(d2 + 1, f"out.add('structure', C_{j}({v}), {p}, 'value')")
                self.const(f"C_{j}", slot.check)
                self.emit(d2, "else:")
                d2 += 1
            else:
                self.const(f"C_{j}", slot.check)
                self.emit(d2, f"m = C_{j}({v})")
                self.emit(d2, "if m:")
                self.emit(d2 + 1, f"out.add('structure', m, {p}, 'value')")
                self.emit(d2, "else:")
                d2 += 1
            self.tail(d2, slot, j, v, p)
        else:
            self.const(f"C_{j}", slot.check)
            self.emit(d + 1, f"m = C_{j}({v})")
            self.emit(d + 1, "if m:")
            self.emit(d + 2, f"out.add('structure', m, {p}, 'value')")
            self.emit(d + 1, "else:")
            self.tail(d + 2, slot, j, v, p)
        self.emit(d, "else:")
        message = f"{info.type} must be a JSON {kind}, found "
        self.emit(d + 1, f"out.add('structure', {message!r} + json_name({v}), {p}, 'structure')")
        self.invariants(d + 1, slot.invariants, f"I_{j}", v, p)

    def invariants(self, d: int, invs: tuple[Any, ...], prefix: str, v: str, p: str) -> None:
        """Each constraint called directly; one that cannot be evaluated is recorded, never met."""
        for n, inv in enumerate(invs):
            name = self.const(f"{prefix}_{n}", inv.check)
            self.const(f"{prefix}_{n}o", inv)
            guard = "ctx.root is ctx.resource and " if inv.key == "dom-6" else ""  # contained: no narrative
            self.emit(d, "try:")
            self.emit(d + 1, f"if {guard}not {name}({v}, ctx.resource, ctx.root):")
            self.emit(d + 2, f"invariant_failed({name}o, {p}, ctx)")
            self.emit(d, "except NotEvaluated as e:")
            self.emit(d + 1, f"ctx.out.not_evaluated.setdefault({inv.key!r}, str(e))")

    def tail(self, d: int, slot: Slot, j: int, v: str, p: str) -> None:
        """After a well-formed primitive: its binding and constraints."""
        b = slot.binding
        if b is not None:
            if b.codes is None:
                self.emit(d, f"check_code(S_{j}.binding, None, {v}, {p}, ctx)")
            else:
                self.const(f"B_{j}", frozenset(c for codes in b.codes.values() for c in codes))
                self.emit(d, f"if {v} not in B_{j}:")
                self.emit(d + 1, f"check_code(S_{j}.binding, None, {v}, {p}, ctx)")
        self.invariants(d, slot.invariants, f"I_{j}", v, p)
        if b is None and not slot.invariants:
            self.emit(d, "pass")

    def complex(self, d: int, slot: Slot, j: int, key: str, v: str, p: str, idx: str) -> None:
        if slot.kind != "complex":
            self.emit(d, f"value({v}, S_{j}, path, {key!r}, {idx}, ctx, where)")
            return
        leaf = slot.info.choice.rsplit(".", 1)[-1] if slot.info.choice else key
        self.env[f"W_{j}"] = _trampoline(f"W_{j}", slot, self.env)
        self.emit(d, f"if type({v}) is dict:")
        self.emit(d + 1, f"W_{j}({v}, {p}, False, ctx, (where[0] + {'.' + leaf!r}, {slot.node_path!r}))")
        if slot.needs_post:
            self.emit(d + 1, f"post_complex({v}, S_{j}, {p}, ctx, where, False)")
        self.invariants(d + 1, slot.invariants, f"I_{j}", v, p)
        self.emit(d, "else:")
        self.emit(d + 1, f"value({v}, S_{j}, path, {key!r}, {idx}, ctx, where)")

    def one_value(self, d: int, slot: Slot, j: int, key: str, v: str, idx: str) -> None:
        p = f"(path, {key!r}, {idx})"
        if slot.kind == "primitive":
            self.primitive(d, slot, j, v, p)
        else:
            self.complex(d, slot, j, key, v, p, idx)

    def slot(self, j: int, key: str, slot: Slot, choice_var: str | None) -> None:
        self.const(f"S_{j}", slot)
        self.emit(1, f"v = obj.get({key!r})")
        self.emit(1, "if v is not None:")
        self.emit(2, "found += 1")
        if choice_var:
            leaf = choice_var[2:]
            self.emit(2, f"if {choice_var} is not None:")
            self.emit(3, f"out.add('cardinality', \"both '\" + {choice_var} + \"' and '{key}' given for {leaf}[x]: "
                         f"only one is allowed\", (path, {key!r}, None), 'structure')")
            self.emit(2, f"{choice_var} = {key!r}")
        if slot.info.many:
            self.emit(2, "if type(v) is list:")
            self.emit(3, "if not v:")
            self.emit(4, f"out.add('structure', 'array cannot be empty: omit the element instead', "
                         f"(path, {key!r}, None), 'structure')")
            if slot.max is not None:
                self.emit(3, f"elif len(v) > {slot.max}:")
                self.emit(4, f"too_many(v, S_{j}, path, {key!r}, ctx)")
            self.emit(3, "for i, item in enumerate(v):")
            self.emit(4, "if item is None:")
            self.emit(5, f"if {'_' + key!r} not in obj:")
            self.emit(6, f"out.add('structure', 'null in an array without a primitive extension', "
                         f"(path, {key!r}, i), 'structure')")
            self.emit(4, "else:")
            self.one_value(5, slot, j, key, "item", "i")
            self.emit(2, "else:")
            self.emit(3, f"out.add('structure', \"'{key}' repeats: it must be a JSON array, not an object or value\", "
                         f"(path, {key!r}, None), 'structure')")
            self.emit(3, f"value(v, S_{j}, path, {key!r}, None, ctx, where)")
        else:
            self.emit(2, "if type(v) is list:")
            self.emit(3, f"out.add('structure', \"'{key}' does not repeat: it must not be a JSON array\", "
                         f"(path, {key!r}, None), 'structure')")
            self.emit(2, "else:")
            self.one_value(3, slot, j, key, "v", "None")

    def source(self) -> str:
        nd = self.nd
        self.emit(0, "def walk(obj, path, is_resource, ctx, where):")
        self.emit(1, "out = ctx.out")
        self.emit(1, "n = len(obj)")
        self.emit(1, "if not n or (n == 1 and 'id' in obj and not is_resource):")
        self.emit(2, "out.add('structure', EMPTY, path, 'structure')")
        self.emit(2, "return")
        self.emit(1, "found = 0")
        groups = sorted({s.info.choice.rsplit(".", 1)[-1] for s in nd.slots.values() if s.info.choice})
        for g in groups:
            self.emit(1, f"c_{g} = None")
        big = {g for g in groups if sum(1 for s in nd.slots.values()
                                         if s.info.choice and s.info.choice.rsplit(".", 1)[-1] == g) > _MANY_VARIANTS}
        for g in sorted(big):  # look a many-typed choice's variants up only if a key starts with its name
            self.emit(1, f"g_{g} = False")
            self.emit(1, "for k in obj:")
            self.emit(2, f"if k.startswith({g!r}):")
            self.emit(3, f"g_{g} = True")
            self.emit(3, "break")
        for j, (key, slot) in enumerate(nd.slots.items()):
            group = slot.info.choice.rsplit(".", 1)[-1] if slot.info.choice else None
            if group in big:
                start = len(self.lines)
                self.slot(j, key, slot, f"c_{group}")
                self.lines[start:] = [f"    if g_{group}:"] + ["    " + line for line in self.lines[start:]]
            else:
                self.slot(j, key, slot, f"c_{group}" if group else None)
        self.emit(1, "seen = other_keys(obj, NODE, path, is_resource, ctx, where) if found != n else ()")
        for name in nd.required:
            self.emit(1, f"if {name!r} not in obj and {'_' + name!r} not in obj:")
            self.emit(2, f"out.add('cardinality', render_req(path, {name!r}), (path, {name!r}, None), 'required')")
        for base, _min in nd.choices:
            self.emit(1, f"if c_{base} is None and {base!r} not in seen and not any(k.startswith({'_' + base!r}) "
                         "for k in obj):")
            self.emit(2, f"out.add('cardinality', render_choice(path, {base!r}), (path, {base + '[x]'!r}, None), "
                         "'required')")
        self.invariants(1, nd.invariants, "N", "obj", "path")
        return "\n".join(self.lines) + "\n"


def _too_many(values: list[Any], slot: Slot, path: Any, key: str, ctx: Any) -> None:
    ctx.out.add("cardinality", f"{render((path, key, None))}: at most {slot.max} allowed, found {len(values)}",
                (path, key, None), "structure")


def _render_req(path: Any, name: str) -> str:
    return f"{render((path, name, None))}: minimum required = 1, but none found"


def _render_choice(path: Any, base: str) -> str:
    return f"{render((path, base + '[x]', None))}: one of its types is required, but none found"


def compile_walk(nd: Node) -> Walk:
    """Generate, compile and return the walk function of one element state."""
    writer = _Writer(nd)
    text = writer.source()
    code = compile(text, f"<care-assure walk {nd.fhir_path}>", "exec")
    exec(code, writer.env)
    walk: Walk = writer.env["walk"]
    _SOURCES[id(walk)] = text
    return walk
