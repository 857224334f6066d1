"""Element names in a FHIRPath expression, checked against the R4 definitions (for ``packs lint``).

A rule whose ``select`` or ``where`` names an element its resource type does not have (a typo
such as ``stauts``) selects nothing, so it can never fail. This follows the expression's
navigation through the R4 element table — members, ``where``/``exists``/``all``/``select``
arguments (evaluated on the element they filter), ``ofType``/``as`` — and reports each name
that no element has, with the nearest real name. Where the type is not known statically (after
``resolve()``, arithmetic, most functions) it stops rather than guess.
"""

from __future__ import annotations

import difflib
from typing import Any

from harness.fhir.model import r4
from harness.fhirpath import parse_strict

State = tuple[str, str]
States = frozenset[State] | None  # None: not known statically
_FILTERS = frozenset({"where", "exists", "all", "select", "repeat"})
_SAME = frozenset({"first", "last", "single", "tail", "distinct", "where", "trace"})


class _Walker:
    def __init__(self, roots: frozenset[State]) -> None:
        self.roots = roots
        self.unknown: list[tuple[str, str, str | None]] = []  # (name, on type, suggestion)

    def eval(self, node: dict[str, Any], states: States) -> States:
        ntype = node.get("type")
        kids: list[dict[str, Any]] = node.get("children", [])
        if ntype in (None, "TermExpression", "InvocationTerm", "ParenthesizedTerm") and len(kids) == 1:
            return self.eval(kids[0], states)
        if ntype == "MemberInvocation":
            return self.member(kids[0], states)
        if ntype == "InvocationExpression":
            left = self.eval(kids[0], states)
            right = kids[1]
            if right.get("type") == "MemberInvocation":
                return self.member(right.get("children", [])[0], left)
            if right.get("type") == "FunctionInvocation":
                return self.function(right, left)
            return None
        if ntype == "FunctionInvocation":
            return self.function(node, states)
        if ntype == "ThisInvocation":
            return states
        for kid in kids:  # operators: check each side on the same focus
            self.eval(kid, states)
        return None

    def member(self, ident: dict[str, Any], states: States) -> States:
        name = _name(ident)
        if not states:
            return None
        model = r4()
        if name[:1].isupper() and (name in model.resource_types or name in ("Resource", "DomainResource")):
            return states  # a type filter at the root (Patient.name)
        found: set[State] = set()
        names: set[str] = set()
        for state in states:
            children = model.children(state) if state[0] in model.primitives or model.has_type(state[0]) else {}
            info = children.get(name)
            if info is not None:
                found.add(info.state)
                continue
            variants = [i for i in children.values() if i.choice and i.choice.rsplit(".", 1)[-1] == name]
            found.update(i.state for i in variants)
            names.update(children)
            names.update(i.choice.rsplit(".", 1)[-1] for i in children.values() if i.choice)
        if found:
            return frozenset(found)
        if names:
            close = difflib.get_close_matches(name, sorted(names), n=1)
            on = sorted(states)[0]
            self.unknown.append((name, f"{on[0]}.{on[1]}" if on[1] else on[0], close[0] if close else None))
        return None

    def function(self, node: dict[str, Any], states: States) -> States:
        functn = node["children"][0]
        parts = functn.get("children", [])
        name = _name(parts[0])
        params = parts[1].get("children", []) if len(parts) > 1 else []
        if name in ("ofType", "as") and params:
            type_name = _plain_identifier(params[0])
            model = r4()
            if type_name and (model.has_type(type_name) or type_name in model.primitives):
                return frozenset({(type_name, "")})
            return None
        for param in params:
            result = self.eval(param, states if name in _FILTERS else self.roots)
            if name == "select":
                return result
        return states if name in _SAME else None


def _name(ident: dict[str, Any]) -> str:
    text: str = ident["terminalNodeText"][0] if ident.get("terminalNodeText") else ident.get("text", "")
    return text[1:-1] if text.startswith("`") else text


def _plain_identifier(node: dict[str, Any]) -> str | None:
    while node.get("children") and len(node["children"]) == 1 and node.get("type") != "Identifier":
        node = node["children"][0]
    return _name(node) if node.get("type") == "Identifier" else None


def unknown_elements(expression: str, resource_types: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """(name, type it was looked up on, nearest real name) for each element the expression names wrongly."""
    model = r4()
    roots = frozenset((t, "") for t in resource_types if t in model.resource_types)
    if not roots or len(roots) != len(resource_types):
        return []  # '*' or an unknown type (reported on its own)
    walker = _Walker(roots)
    walker.eval(parse_strict(expression), roots)
    return list(dict.fromkeys(walker.unknown))
