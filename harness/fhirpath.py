"""FHIRPath, compiled once per run: a fast native path for the common subset, fhirpathpy for the rest.

fhirpathpy evaluates the whole language but costs ~100 µs per call. Rules mostly use a small
subset (navigation, ``where``, ``exists``, equality against literals, boolean logic), so the
expression is parsed with fhirpathpy's own parser and, when every node is in that subset,
turned into Python closures over plain JSON. Anything outside the subset, at compile time or
on a particular resource at run time (choice elements, primitive extensions, mixed types),
is evaluated by fhirpathpy, so results never depend on which path ran.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from harness.fhir.model import r4

Collection = list[Any]


class FHIRPathSyntaxError(ValueError):
    """The expression does not parse."""


# Parsed trees of the bundled packs' expressions (``make tables``; harness/packs/parsed_paths.py): a run
# over the bundled suites need not load the ANTLR parser. Looked up by the exact text, so an entry
# can only be missing (then parsed), never wrong for another expression; a test re-parses them all.
PARSED_TABLE = Path(__file__).with_name("fhirpath_parsed.json")


@cache
def _parsed_table() -> dict[str, Any]:
    try:
        table: dict[str, Any] = orjson.loads(PARSED_TABLE.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return table


def parse_strict(expression: str) -> dict[str, Any]:
    """Parse with fhirpathpy's grammar, but fail on any syntax error (its own parser recovers)."""
    found = _parsed_table().get(expression)
    if found is not None:
        return found  # type: ignore[no-any-return]
    return parse_with_antlr(expression)


def parse_with_antlr(expression: str) -> dict[str, Any]:
    """Parse with fhirpathpy's ANTLR grammar (loaded on first use), failing on any syntax error."""
    from antlr4 import CommonTokenStream, InputStream, ParseTreeWalker, Token  # noqa: PLC0415 - slow to load
    from antlr4.error.ErrorListener import ErrorListener  # noqa: PLC0415
    from fhirpathpy.parser.ASTPathListener import ASTPathListener  # noqa: PLC0415
    from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer  # noqa: PLC0415
    from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser  # noqa: PLC0415

    class _StrictErrors(ErrorListener):  # type: ignore[misc]  # antlr4 is untyped
        def syntaxError(self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any) -> None:
            raise FHIRPathSyntaxError(f"FHIRPath does not parse at column {column + 1}: {msg}")

    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_StrictErrors())
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.buildParseTrees = True
    parser.removeErrorListeners()
    parser.addErrorListener(_StrictErrors())
    listener = ASTPathListener()  # type: ignore[no-untyped-call]  # fhirpathpy's listener is untyped
    tree = parser.expression()
    if parser.getCurrentToken().type != Token.EOF:
        token = parser.getCurrentToken()
        raise FHIRPathSyntaxError(f"FHIRPath does not parse: unexpected '{token.text}' at column {token.column + 1}")
    ParseTreeWalker().walk(listener, tree)
    ast: dict[str, Any] = listener.parentStack[0]
    return ast


class _Unsupported(Exception):
    """Outside the native subset: use fhirpathpy."""


class _Fallback(Exception):
    """This resource needs fhirpathpy (raised during native evaluation)."""


# The environment native closures receive: (%resource, %rootResource, %context).
_Env = tuple[Any, Any, Any]
Fn = Callable[[Collection, _Env], Collection]
_NUMERIC_LIT = frozenset("0123456789")


class CompiledPath:
    """A compiled FHIRPath expression; call it with a resource to get a list of values."""

    __slots__ = ("_ast", "_native", "_parsed", "_slow", "expression", "native")

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._slow: Callable[[Any], Collection] | None = None
        self._parsed: Any = None
        try:
            ast = parse_strict(expression)
        except FHIRPathSyntaxError:
            raise
        except Exception as exc:  # noqa: BLE001 - the lexer raises bare exceptions on bad characters
            raise FHIRPathSyntaxError(f"FHIRPath does not parse: {exc}") from None
        try:
            self._native: Fn | None = _compile(ast)
        except _Unsupported:
            self._native = None
        if self._native is not None:
            self._ast = ast
            self._native = self._generate  # the same evaluation as one generated function, written on first use
        self.native = self._native is not None
        if self._native is None:
            self._slow = self._compile_slow()

    def __reduce__(self) -> Any:
        """Never sent between processes: each builds its own plan (``harness.parallel``), so state that
        holds compiled expressions is configuration, whether or not the expression has run yet."""
        raise TypeError(f"a compiled FHIRPath expression is not sent between processes: {self.expression!r}")

    def _generate(self, focus: Collection, env: _Env) -> Collection:
        """First call: write and compile the generated function (rules for types a target lacks never pay)."""
        from harness.fhirpath_gen import generate  # noqa: PLC0415 - it builds on this module

        self._native = generate(self._ast, self.expression)
        return self._native(focus, env)

    def _compile_slow(self) -> Callable[[Any], Collection]:
        from fhirpathpy import compile as fp_compile  # noqa: PLC0415 - only for expressions outside the native subset
        from fhirpathpy.models import models as fp_models  # noqa: PLC0415

        try:
            slow = fp_compile(self.expression, fp_models["r4"])
            return lambda resource: slow(resource, None)
        except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exceptions
            raise FHIRPathSyntaxError(f"FHIRPath does not compile: {exc}") from None

    def __call__(self, resource: Any) -> Collection:
        if self._native is not None:
            try:
                return self._native([resource], (resource, resource, resource))
            except _Fallback:
                pass
        if self._slow is None:
            self._slow = self._compile_slow()
        return list(self._slow(resource))

    def evaluate(self, focus: Any, resource: Any, root: Any, base: str) -> Collection:
        """Evaluate on an element inside a resource: ``base`` is the element's FHIR path (for typing)."""
        if self._native is not None:
            try:
                return self._native([focus], (resource, root, focus))
            except _Fallback:
                pass
        from fhirpathpy import apply_parsed_path  # noqa: PLC0415 - only off the native path
        from fhirpathpy.engine.nodes import ResourceNode  # noqa: PLC0415
        from fhirpathpy.models import models as fp_models  # noqa: PLC0415
        from fhirpathpy.parser import parse as fp_parse  # noqa: PLC0415

        if self._parsed is None:
            self._parsed = fp_parse(self.expression)  # type: ignore[no-untyped-call]  # fhirpathpy is untyped
        node = ResourceNode.create_node(focus, base)  # type: ignore[no-untyped-call]  # fhirpathpy is untyped
        answer = apply_parsed_path(  # type: ignore[no-untyped-call]  # fhirpathpy is untyped
            node, self._parsed, {"resource": resource, "rootResource": root, "context": focus},
            fp_models["r4"], _FP_OPTIONS)
        return list(answer)


@cache
def compile_path(expression: str) -> CompiledPath:
    """Compile (and cache) one expression."""
    return CompiledPath(expression)


def _has_value(inputs: list[Any]) -> list[bool]:
    """FHIRPath ``hasValue()``: one primitive with a value (fhirpathpy lacks it)."""
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))]


_FP_OPTIONS = {"userInvocationTable": {"hasValue": {"fn": _has_value, "arity": {0: []}}},
               "traceFn": lambda *args: None}  # trace() in constraints must not print


# --- native compiler -----------------------------------------------------------------------

def _kids(node: dict[str, Any]) -> list[dict[str, Any]]:
    return node.get("children", [])  # type: ignore[no-any-return]


def _unwrap(node: dict[str, Any]) -> dict[str, Any]:
    """The node inside the single-child wrappers the grammar puts around terms (and parentheses)."""
    while node.get("type") in (None, "TermExpression", "InvocationTerm", "LiteralTerm", "ParenthesizedTerm") \
            and len(_kids(node)) == 1:
        node = _kids(node)[0]
    return node


def _compile(node: dict[str, Any]) -> Fn:
    ntype = node.get("type")
    kids = _kids(node)
    if ntype is None or ntype in ("TermExpression", "InvocationTerm", "LiteralTerm"):
        if len(kids) != 1:
            raise _Unsupported
        return _compile(kids[0])
    handler = _HANDLERS.get(ntype)
    if handler is None:
        raise _Unsupported
    return handler(node)


def _identifier(node: dict[str, Any]) -> str:
    text: str = node["terminalNodeText"][0] if node.get("terminalNodeText") else node["text"]
    if text.startswith("`") and text.endswith("`"):
        text = text[1:-1]
    return text


def _member(node: dict[str, Any]) -> Fn:
    name = _identifier(_kids(node)[0])
    model = r4()
    if name[:1].isupper() and (name in model.resource_types or name in ("Resource", "DomainResource")):
        return _type_filter(name)
    ext_name = "_" + name
    suffixes = model.choice_suffixes.get(name)
    prefix_len = len(name)
    # few variants: look each concrete name up; many (value[x]): scan the object's keys
    concrete = tuple(name + sfx for sfx in sorted(suffixes)) if suffixes and len(suffixes) <= 8 else None

    def member(focus: Collection, env: _Env) -> Collection:
        out: Collection = []
        for item in focus:
            if not isinstance(item, dict):
                continue
            value = item.get(name)
            if ext_name in item:
                raise _Fallback
            if value is None:
                if concrete is not None:
                    for key in concrete:
                        value = item.get(key)
                        if value is not None:
                            if "_" + key in item:
                                raise _Fallback
                            break
                elif suffixes is not None:
                    value = _choice_value(item, name, prefix_len, suffixes)
                if value is None:
                    continue
            if isinstance(value, list):
                out.extend(v for v in value if v is not None)
            else:
                out.append(value)
        return out

    return member


def _choice_value(item: dict[str, Any], name: str, prefix_len: int, suffixes: frozenset[str]) -> Any:
    """The value of a choice element (``value`` → ``valueQuantity``…), if the item has one."""
    for key, value in item.items():
        if key.startswith(name) and key[prefix_len:] in suffixes:
            if "_" + key in item:
                raise _Fallback
            return value
    return None


def _type_filter(name: str) -> Fn:
    def type_filter(focus: Collection, env: _Env) -> Collection:
        if name in ("Resource", "DomainResource"):
            return [i for i in focus if isinstance(i, dict) and "resourceType" in i]
        return [i for i in focus if isinstance(i, dict) and i.get("resourceType") == name]
    return type_filter


def _this(node: dict[str, Any]) -> Fn:
    if node.get("terminalNodeText") != ["$this"]:
        raise _Unsupported
    return lambda focus, env: focus


_ENV_INDEX = {"resource": 0, "rootResource": 1, "context": 2}


def _external(node: dict[str, Any]) -> Fn:
    term = _kids(node)[0]
    name = _identifier(_kids(term)[0]) if _kids(term) else ""
    index = _ENV_INDEX.get(name)
    if index is None:
        raise _Unsupported
    return lambda focus, env: [env[index]]


_DATE_LIKE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?(T.*)?$")  # a year, year-month, date or date-time


def _string(node: dict[str, Any]) -> Fn:
    raw = node["terminalNodeText"][0]
    body = raw[1:-1]
    if "\\" in body or _DATE_LIKE.match(body):
        raise _Unsupported  # escapes and date-like strings: leave conversions to fhirpathpy
    return lambda focus, env: [body]


def _boolean(node: dict[str, Any]) -> Fn:
    value = node["terminalNodeText"][0] == "true"
    return lambda focus, env: [value]


def _number(node: dict[str, Any]) -> Fn:
    raw = node["terminalNodeText"][0]
    if not raw or not set(raw) <= _NUMERIC_LIT:
        raise _Unsupported
    value = int(raw)
    return lambda focus, env: [value]


def _paren(node: dict[str, Any]) -> Fn:
    return _compile(_kids(node)[0])


def _invocation(node: dict[str, Any]) -> Fn:
    left_node, right_node = _kids(node)
    left = _compile(left_node)
    if right_node.get("type") == "MemberInvocation":
        right = _member(right_node)
    elif right_node.get("type") == "FunctionInvocation":
        right = _function(right_node)
    else:
        raise _Unsupported

    def invoke(focus: Collection, env: _Env) -> Collection:
        return right(left(focus, env), env)

    return invoke


def _scalar(value: Any) -> Any:
    if isinstance(value, (dict, list, float)):
        raise _Fallback
    return value


def _equality(node: dict[str, Any]) -> Fn:
    op = node["terminalNodeText"][0]
    if op not in ("=", "!="):
        raise _Unsupported
    left, right = (_compile(k) for k in _kids(node))
    negate = op == "!="

    def equal(focus: Collection, env: _Env) -> Collection:
        a, b = left(focus, env), right(focus, env)
        if not a or not b:
            return []
        if len(a) != 1 or len(b) != 1:
            raise _Fallback
        x, y = _scalar(a[0]), _scalar(b[0])
        if type(x) is not type(y):
            raise _Fallback
        return [(x == y) != negate]

    return equal


def _union(node: dict[str, Any]) -> Fn:
    left, right = (_compile(k) for k in _kids(node))

    def union(focus: Collection, env: _Env) -> Collection:
        out: Collection = []
        for item in (*left(focus, env), *right(focus, env)):
            if isinstance(item, float):
                raise _Fallback
            if not any(type(item) is type(seen) and item == seen for seen in out):
                out.append(item)
        return out

    return union


def _bool_operand(values: Collection) -> bool | None:
    if not values:
        return None
    if len(values) == 1 and isinstance(values[0], bool):
        return values[0]
    raise _Fallback


def _logic(node: dict[str, Any]) -> Fn:
    op = node["terminalNodeText"][0]
    left, right = (_compile(k) for k in _kids(node))

    def combine(focus: Collection, env: _Env) -> Collection:
        a = _bool_operand(left(focus, env))
        if op == "and" and a is False:
            return [False]
        if op == "or" and a is True:
            return [True]
        if op == "implies" and a is False:
            return [True]
        b = _bool_operand(right(focus, env))
        if op == "and":
            result = False if b is False else (True if a and b else None)
        elif op == "or":
            result = True if b is True else (False if a is False and b is False else None)
        elif op == "xor":
            result = None if a is None or b is None else a != b
        else:  # implies, a is True or None
            result = True if b is True else (b if a is True else None)
        return [] if result is None else [result]

    return combine



_STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "startsWith": str.startswith, "endsWith": str.endswith, "contains": str.__contains__,
}


def _literal_string(node: dict[str, Any]) -> str | None:
    """The text of a plain string literal argument, or None for anything else."""
    while node.get("type") in (None, "TermExpression", "LiteralTerm") and len(_kids(node)) == 1:
        node = _kids(node)[0]
    if node.get("type") != "StringLiteral":
        return None
    body: str = node["terminalNodeText"][0][1:-1]
    return None if "\\" in body else body


def _string_test(test: Callable[[str, str], bool], arg: str) -> Fn:
    def string_test(focus: Collection, env: _Env) -> Collection:
        if not focus:
            return []
        if len(focus) != 1 or not isinstance(focus[0], str):
            raise _Fallback  # an error in FHIRPath: let fhirpathpy report it
        return [test(focus[0], arg)]
    return string_test


def _function(node: dict[str, Any]) -> Fn:
    functn = _kids(node)[0]
    kids = _kids(functn)
    name = _identifier(kids[0])
    if name in _STRING_TESTS and len(kids) > 1 and len(_kids(kids[1])) == 1:
        arg = _literal_string(_kids(kids[1])[0])
        if arg is None:
            raise _Unsupported
        return _string_test(_STRING_TESTS[name], arg)
    params = [_compile(p) for p in _kids(kids[1])] if len(kids) > 1 else []
    if name == "where" and len(params) == 1:
        crit = params[0]
        return lambda focus, env: [
            item for item in focus if _criteria_true(crit([item], env))
        ]
    if name == "exists" and len(params) <= 1:
        if params:
            crit = params[0]
            return lambda focus, env: [any(_criteria_true(crit([i], env)) for i in focus)]
        return lambda focus, env: [bool(focus)]
    if name == "all" and len(params) == 1:
        crit = params[0]
        return lambda focus, env: [all(_criteria_true(crit([i], env)) for i in focus)]
    if params and name not in _EMPTY_ON_EMPTY:
        raise _Unsupported
    if params:
        return _lazy(params)
    simple: dict[str, Fn] = {
        "empty": lambda focus, env: [not focus],
        "count": lambda focus, env: [len(focus)],
        "first": lambda focus, env: focus[:1],
        "last": lambda focus, env: focus[-1:],
        "not": _not,
        "hasValue": lambda focus, env: [len(focus) == 1 and not isinstance(focus[0], (dict, list))],
    }
    if name not in simple:
        if name in _EMPTY_ON_EMPTY:
            return _lazy(params)
        raise _Unsupported
    return simple[name]


# Functions whose result on an empty input is empty, whatever their arguments (FHIRPath R4,
# functions section): natively they answer the common empty case and leave the rest to fhirpathpy.
_EMPTY_ON_EMPTY = frozenset({
    "intersect", "exclude", "distinct", "tail", "skip", "take", "single", "select", "repeat", "ofType", "as",
    "is", "toString", "toInteger", "toDecimal", "toDateTime", "toDate", "toTime", "toQuantity", "toBoolean",
    "substring", "matches", "replace", "replaceMatches", "length", "upper", "lower", "indexOf", "extension",
    "resolve", "children", "descendants", "trace", "memberOf", "abs", "ceiling", "floor", "round", "sqrt",
    "truncate", "ln", "log", "power", "exp",
})


def _lazy(params: list[Fn]) -> Fn:
    """A function outside the native subset: empty in, empty out; anything else goes to fhirpathpy."""
    def lazy(focus: Collection, env: _Env) -> Collection:
        if not focus:
            return []
        raise _Fallback
    return lazy


def _compare(node: dict[str, Any]) -> Fn:
    """Ordering and membership: an empty left operand gives empty (for ``in``, a left one; FHIRPath R4)."""
    op = node["terminalNodeText"][0]
    left, right = (_compile(k) for k in _kids(node))
    if op not in ("<", "<=", ">", ">=", "in"):
        raise _Unsupported

    def compare(focus: Collection, env: _Env) -> Collection:
        if not left(focus, env):
            return []
        if op != "in" and not right(focus, env):
            return []
        raise _Fallback
    return compare


def _criteria_true(values: Collection) -> bool:
    if not values:
        return False
    if len(values) == 1 and isinstance(values[0], bool):
        return values[0]
    raise _Fallback


def _not(focus: Collection, env: _Env) -> Collection:
    value = _bool_operand(focus)
    return [] if value is None else [not value]


_HANDLERS: dict[str, Callable[[dict[str, Any]], Fn]] = {
    "MemberInvocation": _member,
    "ThisInvocation": _this,
    "ExternalConstantTerm": _external,
    "StringLiteral": _string,
    "BooleanLiteral": _boolean,
    "NumberLiteral": _number,
    "ParenthesizedTerm": _paren,
    "InvocationExpression": _invocation,
    "EqualityExpression": _equality,
    "AndExpression": _logic,
    "OrExpression": _logic,
    "ImpliesExpression": _logic,
    "UnionExpression": _union,
    "FunctionInvocation": _function,
    "InequalityExpression": _compare,
    "MembershipExpression": _compare,
}
