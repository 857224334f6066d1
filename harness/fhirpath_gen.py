"""The native FHIRPath subset as generated Python: one function per expression, compiled once.

``harness.fhirpath`` turns an expression into closures, one per node of its tree; calling them
costs a Python call and a list per node, which for the short paths rules and invariants use
(``identifier.where(system = '…').value``) is most of the time spent. This module writes the
same evaluation as one function of straight-line code and loops, node for node the semantics of
the closure it replaces (same results, same hand-over to fhirpathpy by ``_Fallback`` on the
cases the subset leaves out), and compiles it with ``compile()``. Nodes it does not write are
called as their closures, so it covers whatever the closure compiler covers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import fhirpath as fp
from harness.fhir.model import r4

Node = dict[str, Any]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "_Fallback": fp._Fallback, "criteria_true": fp._criteria_true, "bool_operand": fp._bool_operand,
            "scalar": fp._scalar, "choice_value": fp._choice_value,
        }
        self.n = 0

    def var(self) -> str:
        self.n += 1
        return f"v{self.n}"

    def const(self, value: Any) -> str:
        name = f"K{len(self.env)}"
        self.env[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    # -- nodes ------------------------------------------------------------------------------------

    def node(self, node: Node, focus: str, d: int) -> str:
        """Code computing ``node`` on the collection in variable ``focus``; returns the result's variable."""
        ntype = node.get("type")
        kids = fp._kids(node)
        if ntype is None or ntype in ("TermExpression", "InvocationTerm", "LiteralTerm"):
            if len(kids) != 1:
                raise fp._Unsupported
            return self.node(kids[0], focus, d)
        writer = _NODES.get(ntype)
        if writer is None:
            return self.closure(node, focus, d)
        return writer(self, node, focus, d)

    def closure(self, node: Node, focus: str, d: int) -> str:
        """A node this module does not write: its closure, called."""
        out = self.var()
        self.emit(d, f"{out} = {self.const(fp._compile(node))}({focus}, env)")
        return out

    def member(self, node: Node, focus: str, d: int) -> str:
        name = fp._identifier(fp._kids(node)[0])
        model = r4()
        if name[:1].isupper() and (name in model.resource_types or name in ("Resource", "DomainResource")):
            return self.closure(node, focus, d)
        suffixes = model.choice_suffixes.get(name)
        concrete = tuple(name + sfx for sfx in sorted(suffixes)) if suffixes and len(suffixes) <= 8 else None
        out, item, value = self.var(), self.var(), self.var()
        self.emit(d, f"{out} = []")
        self.emit(d, f"for {item} in {focus}:")
        self.emit(d + 1, f"if not isinstance({item}, dict):")
        self.emit(d + 2, "continue")
        self.emit(d + 1, f"{value} = {item}.get({name!r})")
        self.emit(d + 1, f"if {'_' + name!r} in {item}:")
        self.emit(d + 2, "raise _Fallback")
        if concrete is not None or suffixes is not None:
            self.emit(d + 1, f"if {value} is None:")
            if concrete is not None:
                for n, key in enumerate(concrete):  # the first variant present, as an if/else chain
                    at = d + 2 + n
                    self.emit(at, f"{value} = {item}.get({key!r})")
                    self.emit(at, f"if {value} is not None:")
                    self.emit(at + 1, f"if {'_' + key!r} in {item}:")
                    self.emit(at + 2, "raise _Fallback")
                    if n < len(concrete) - 1:
                        self.emit(at, "else:")
            else:
                self.emit(d + 2, f"{value} = choice_value({item}, {name!r}, {len(name)}, {self.const(suffixes)})")
            self.emit(d + 2, f"if {value} is None:")
            self.emit(d + 3, "continue")
        else:
            self.emit(d + 1, f"if {value} is None:")
            self.emit(d + 2, "continue")
        self.emit(d + 1, f"if isinstance({value}, list):")
        self.emit(d + 2, f"{out}.extend({value} if None not in {value} else [x for x in {value} if x is not None])")
        self.emit(d + 1, "else:")
        self.emit(d + 2, f"{out}.append({value})")
        return out

    def invocation(self, node: Node, focus: str, d: int) -> str:
        left_node, right_node = fp._kids(node)
        left = self.node(left_node, focus, d)
        if right_node.get("type") == "MemberInvocation":
            return self.member(right_node, left, d)
        if right_node.get("type") == "FunctionInvocation":
            return self.function(right_node, left, d)
        raise fp._Unsupported

    def function(self, node: Node, focus: str, d: int) -> str:
        functn = fp._kids(node)[0]
        kids = fp._kids(functn)
        name = fp._identifier(kids[0])
        params = fp._kids(kids[1]) if len(kids) > 1 else []
        out = self.var()
        if name in ("where", "exists", "all") and len(params) == 1:
            item, one = self.var(), self.var()
            self.emit(d, f"{out} = []" if name == "where" else f"{out} = {name == 'all'}")
            self.emit(d, f"for {item} in {focus}:")
            if name == "where":
                self.field_equals(params[0], item, out, d + 1)
            self.emit(d + 1, f"{one} = [{item}]")
            crit = self.node(params[0], one, d + 1)
            if name == "where":
                self.emit(d + 1, f"if criteria_true({crit}):")
                self.emit(d + 2, f"{out}.append({item})")
            else:
                test = f"criteria_true({crit})" if name == "exists" else f"not criteria_true({crit})"
                self.emit(d + 1, f"if {test}:")
                self.emit(d + 2, f"{out} = {name == 'exists'}")
                self.emit(d + 2, "break")
            if name != "where":
                self.emit(d, f"{out} = [{out}]")
            return out
        if not params and name in _SIMPLE:
            self.emit(d, f"{out} = {_SIMPLE[name].format(f=focus)}")
            return out
        if name in fp._STRING_TESTS and len(params) == 1:
            arg = fp._literal_string(params[0])
            if arg is not None:
                self.emit(d, f"if not {focus}:")
                self.emit(d + 1, f"{out} = []")
                self.emit(d, f"elif len({focus}) != 1 or not isinstance({focus}[0], str):")
                self.emit(d + 1, "raise _Fallback")
                self.emit(d, "else:")
                self.emit(d + 1, f"{out} = [{_STRING_CODE[name].format(v=focus + '[0]', a=repr(arg))}]")
                return out
        return self.closure(node, focus, d)

    def field_equals(self, criterion: Node, item: str, out: str, d: int) -> None:
        """``where(name = 'text')``, the commonest criterion: a string field is compared in place; any
        other item (not an object, a companion, a value that is not a string) takes the general code."""
        found = _field_and_text(criterion)
        if found is None:
            return
        name, text = found
        value = self.var()
        self.emit(d, f"if isinstance({item}, dict) and {'_' + name!r} not in {item}:")
        self.emit(d + 1, f"{value} = {item}.get({name!r})")
        self.emit(d + 1, f"if {value} is None:")
        self.emit(d + 2, "continue")  # no value: the equality is empty, the criterion not true
        self.emit(d + 1, f"if type({value}) is str:")
        self.emit(d + 2, f"if {value} == {text!r}:")
        self.emit(d + 3, f"{out}.append({item})")
        self.emit(d + 2, "continue")

    def equality(self, node: Node, focus: str, d: int) -> str:
        op = node["terminalNodeText"][0]
        if op not in ("=", "!="):
            raise fp._Unsupported
        left_node, right_node = fp._kids(node)
        a = self.node(left_node, focus, d)
        b = self.node(right_node, focus, d)
        out, x, y = self.var(), self.var(), self.var()
        self.emit(d, f"if not {a} or not {b}:")
        self.emit(d + 1, f"{out} = []")
        self.emit(d, f"elif len({a}) != 1 or len({b}) != 1:")
        self.emit(d + 1, "raise _Fallback")
        self.emit(d, "else:")
        self.emit(d + 1, f"{x} = scalar({a}[0])")
        self.emit(d + 1, f"{y} = scalar({b}[0])")
        self.emit(d + 1, f"if type({x}) is not type({y}):")
        self.emit(d + 2, "raise _Fallback")
        self.emit(d + 1, f"{out} = [({x} == {y}) != {op == '!='}]")
        return out

    def logic(self, node: Node, focus: str, d: int) -> str:
        op = node["terminalNodeText"][0]
        left_node, right_node = fp._kids(node)
        a = self.var()
        self.emit(d, f"{a} = bool_operand({self.node(left_node, focus, d)})")
        out = self.var()
        short = {"and": (False, False), "or": (True, True), "implies": (False, True)}.get(op)
        if short is not None:  # the left operand alone may decide
            self.emit(d, f"if {a} is {short[0]}:")
            self.emit(d + 1, f"{out} = [{short[1]}]")
            self.emit(d, "else:")
            d += 1
        b = self.var()
        self.emit(d, f"{b} = bool_operand({self.node(right_node, focus, d)})")
        result = {
            "and": f"False if {b} is False else (True if {a} and {b} else None)",
            "or": f"True if {b} is True else (False if {a} is False and {b} is False else None)",
            "xor": f"None if {a} is None or {b} is None else {a} != {b}",
            "implies": f"True if {b} is True else ({b} if {a} is True else None)",
        }[op]
        r = self.var()
        self.emit(d, f"{r} = {result}")
        self.emit(d, f"{out} = [] if {r} is None else [{r}]")
        return out

    def union(self, node: Node, focus: str, d: int) -> str:
        left_node, right_node = fp._kids(node)
        a = self.node(left_node, focus, d)
        b = self.node(right_node, focus, d)
        out, item, seen = self.var(), self.var(), self.var()
        self.emit(d, f"{out} = []")
        self.emit(d, f"for {item} in (*{a}, *{b}):")
        self.emit(d + 1, f"if isinstance({item}, float):")
        self.emit(d + 2, "raise _Fallback")
        self.emit(d + 1, f"for {seen} in {out}:")  # duplicates are dropped: same type and equal
        self.emit(d + 2, f"if type({item}) is type({seen}) and {item} == {seen}:")
        self.emit(d + 3, "break")
        self.emit(d + 1, "else:")
        self.emit(d + 2, f"{out}.append({item})")
        return out

    def paren(self, node: Node, focus: str, d: int) -> str:
        return self.node(fp._kids(node)[0], focus, d)

    def this(self, node: Node, focus: str, d: int) -> str:
        if node.get("terminalNodeText") != ["$this"]:
            raise fp._Unsupported
        return focus

    def literal(self, node: Node, focus: str, d: int) -> str:
        value = fp._compile(node)([], (None, None, None))  # a literal's closure ignores focus and environment
        out = self.var()
        self.emit(d, f"{out} = [{self.const(value[0])}]")
        return out


def _field_and_text(node: Node) -> tuple[str, str] | None:
    """(name, text) for a criterion ``name = 'text'`` on a plain element (not a choice, not a type name)."""
    node = fp._unwrap(node)
    if node.get("type") != "EqualityExpression" or node["terminalNodeText"][0] != "=":
        return None
    left, right = fp._kids(node)
    left = fp._unwrap(left)
    if left.get("type") != "MemberInvocation":
        return None
    name = fp._identifier(fp._kids(left)[0])
    text = fp._literal_string(right)
    if text is None or name[:1].isupper() or name in r4().choice_suffixes or fp._DATE_LIKE.match(text):
        return None
    return name, text


_SIMPLE = {
    "empty": "[not {f}]",
    "count": "[len({f})]",
    "first": "{f}[:1]",
    "last": "{f}[-1:]",
    "exists": "[bool({f})]",
    "hasValue": "[len({f}) == 1 and not isinstance({f}[0], (dict, list))]",
}
_STRING_CODE = {"startsWith": "{v}.startswith({a})", "endsWith": "{v}.endswith({a})", "contains": "{a} in {v}"}
_NODES: dict[str, Callable[[_Writer, Node, str, int], str]] = {
    "MemberInvocation": _Writer.member,
    "InvocationExpression": _Writer.invocation,
    "FunctionInvocation": _Writer.function,
    "EqualityExpression": _Writer.equality,
    "AndExpression": _Writer.logic,
    "OrExpression": _Writer.logic,
    "ImpliesExpression": _Writer.logic,
    "ParenthesizedTerm": _Writer.paren,
    "UnionExpression": _Writer.union,
    "ThisInvocation": _Writer.this,
    "StringLiteral": _Writer.literal,
    "BooleanLiteral": _Writer.literal,
    "NumberLiteral": _Writer.literal,
}
SOURCES: dict[int, str] = {}  # id of a generated function → its source (for review and tests)


def generate(ast: Node, expression: str) -> Callable[[list[Any], Any], list[Any]]:
    """The expression as one compiled function ``(focus, env) -> collection``; ``_Unsupported`` if outside."""
    writer = _Writer()
    writer.emit(0, "def evaluate(focus, env):")
    result = writer.node(ast, "focus", 1)
    writer.emit(1, f"return {result}")
    text = "\n".join(writer.lines) + "\n"
    exec(compile(text, f"<care-assure fhirpath {expression[:60]!r}>", "exec"), writer.env)
    function: Callable[[list[Any], Any], list[Any]] = writer.env["evaluate"]
    SOURCES[id(function)] = text
    return function
