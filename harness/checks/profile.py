"""The ``profile`` check kind: one element constraint of a FHIR profile, compiled into the pack.

``care-assure packs generate`` derives these rules from a package's StructureDefinitions; each
rule carries everything it needs (the element's path with its slices resolved, the cardinality,
the code list of a required binding), so no package is needed at run time.

A path is a list of steps. A step names an element (``value[x]`` matches any ``valueFoo``) and
may restrict it to a slice by the value of one of its fields (``{"system": "https://…"}`` for an
identifier slice, ``{"url": "…"}`` for an extension).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from harness.checks.empty_screen import compile_screen, follow, screen_schema, step_count_schema
from harness.checks.registry import RuleContext, register
from harness.fhirpath_schema import Schema
from harness.results import Issue

PLACEHOLDERS = frozenset({"n/a", "na", "none", "null", "unknown", "not known", "tbc", "-", "?", "undefined"})
_LONGEST_PLACEHOLDER = max(map(len, PLACEHOLDERS))

_STEP = {"type": "object", "additionalProperties": False, "required": ["name"],
         "properties": {"name": {"type": "string"}, "slice": {"type": "object",
                                                              "additionalProperties": {"type": "string"}}}}
_PATH = {"type": "array", "minItems": 1, "items": _STEP}


Step = Callable[[Any], list[Any]]


def compile_step(step: dict[str, Any]) -> Step:
    """The values one step reaches from a node (arrays flattened), as a function built once per rule."""
    name: str = step["name"]
    wanted = tuple(step.get("slice", {}).items())

    def items(value: Any) -> list[Any]:
        found = value if type(value) is list else [value]
        if wanted:
            return [i for i in found if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted)]
        return found

    if name.endswith("[x]"):
        stem, cut = name[:-3], len(name) - 3

        def choice(node: Any) -> list[Any]:
            if not isinstance(node, dict):
                return []
            out: list[Any] = []
            for k, v in node.items():
                if k.startswith(stem) and k[cut:cut + 1].isupper():
                    out.extend(items(v))
            return out
        return choice

    def plain(node: Any) -> list[Any]:
        if not isinstance(node, dict):
            return []
        value = node.get(name)
        if value is None and name not in node:
            return []
        return items(value)
    return plain


def compiled_walk(steps: list[Step]) -> Step:
    """Every value at the end of the path (arrays flattened)."""
    def run(resource: Any) -> list[Any]:
        nodes: list[Any] = [resource]
        for step in steps:
            nodes = [child for node in nodes for child in step(node)]
            if not nodes:
                break
        return nodes
    return run


class PathTree:
    """Many paths over one resource walked together: a shared prefix is walked once.

    Each path ends at a tag (its position in the rule); ``visit`` lists ``(tag, value)`` for every value at
    the end of every path, in the order the tree reaches them.
    """

    def __init__(self) -> None:
        self.children: dict[str, tuple[Step, PathTree]] = {}
        self.tags: list[int] = []

    def add(self, steps: list[dict[str, Any]], tag: int) -> None:
        node = self
        for step in steps:
            key = repr(sorted(step.items()))
            if key not in node.children:
                node.children[key] = (compile_step(step), PathTree())
            node = node.children[key][1]
        node.tags.append(tag)

    def visit(self, value: Any, found: list[tuple[int, Any]]) -> None:
        """Append ``(tag, value)`` for every value at the end of every path."""
        for tag in self.tags:
            found.append((tag, value))
        for step, child in self.children.values():
            for item in step(value):
                child.visit(item, found)


def is_empty(value: Any, coded: bool = False) -> bool:
    """Empty or placeholder: what FHIR's ele-1 and UK Core's must-support guidance forbid.

    A ``coded`` element's value is a code, where 'unknown' may be a code of its value set
    (AdministrativeGender has one): only an empty one is empty.
    """
    kind = type(value)
    if kind is not str and kind is not dict and kind is not list:  # exact types first: this runs per element
        if value is None:
            return True
        if not isinstance(value, (str, dict, list)):
            return False
    if isinstance(value, str):
        text = value.strip()
        return not text or (not coded and len(text) <= _LONGEST_PLACEHOLDER and text.lower() in PLACEHOLDERS)
    for item in value.values() if isinstance(value, dict) else value:  # noqa: SIM110 - a loop: all() over a generator costs more per element
        if not is_empty(item):
            return False
    return True


def _profile_screen(params: dict[str, Any], select: str | None) -> Schema | None:
    """A schema under which the rule reports nothing (CheckKind.screen); None for what it does not say."""
    constraint = params["constraint"]
    if constraint == "must-support":
        return screen_schema([(e["path"], _is_code(e["element"], e["path"])) for e in params["elements"]],
                             PLACEHOLDERS)
    steps = params["path"]
    if constraint == "cardinality":
        high = None if str(params.get("max", "*")) == "*" else int(params["max"])
        end = step_count_schema(steps[-1], int(params.get("min", 0)), high)
        return None if end is None else follow(steps[:-1], end)
    if constraint == "system":  # every value's system, if a string, is the fixed one (so never a near miss)
        fixed = {"anyOf": [{"not": {"type": "object"}}, {"properties": {"system": {"anyOf": [
            {"const": params["system"]}, {"not": {"type": "string"}}]}}}]}
        return follow(steps, fixed)
    if constraint == "binding" and params.get("codes"):
        codes = sorted({(sy, c) for sy, c in params["codes"]})
        coding = {"type": "object", "required": ["system", "code"], "anyOf": [
            {"properties": {"system": {"const": sy}, "code": {"const": c}}} for sy, c in codes]}
        value = {"anyOf": [
            {"type": "string", "enum": sorted({c for _, c in codes})},
            {"type": "object", "required": ["coding"], "properties": {"coding": {"type": "array", "contains": coding}}},
            {"allOf": [{"not": {"required": ["coding"]}}, coding]},
        ]}
        return follow(steps, value)
    return None


@register("profile", scope="resource", screen=_profile_screen, params={
    "profile": {"type": "string"},
    "element": {"type": "string"},
    "constraint": {"enum": ["cardinality", "binding", "system", "must-support"]},
    "path": _PATH,
    "min": {"type": "integer", "minimum": 0},
    "max": {"type": ["integer", "string"]},
    "codes": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                         "items": {"type": "string"}}},
    "code_pattern": {"type": "string"},
    "code_system": {"type": "string"},
    "system": {"type": "string"},
    "elements": {"type": "array", "items": {"type": "object", "required": ["element", "path"],
                                            "properties": {"element": {"type": "string"}, "path": _PATH}}},
})
def profile(params: dict[str, Any], ctx: RuleContext) -> Any:
    constraint = params["constraint"]
    builder = {"cardinality": _cardinality, "binding": _binding, "system": _system,
               "must-support": _must_support}[constraint]
    return builder(params)


def _cardinality(params: dict[str, Any]) -> Any:
    steps, element = params["path"], params["element"]
    low = int(params.get("min", 0))
    high = None if str(params.get("max", "*")) == "*" else int(params["max"])

    parents, last = compiled_walk([compile_step(step) for step in steps[:-1]]), compile_step(steps[-1])

    def check(resource: dict[str, Any], _values: Any) -> Iterator[Issue]:
        for parent in parents(resource):
            count = len(last(parent))
            if count < low:
                yield Issue(f"{element} is required ({low}..{params.get('max', '*')}) but "
                            f"{'is missing' if count == 0 else f'occurs {count} time(s)'}", path=element,
                            code="required")
            elif high is not None and count > high:
                yield Issue(f"{element} may occur at most {high} time(s) but occurs {count} times", path=element,
                            code="structure")
    return check


def _binding(params: dict[str, Any]) -> Any:
    steps, element = params["path"], params["element"]
    allowed = {(s, c) for s, c in params.get("codes", [])}
    pattern = re.compile(params["code_pattern"]) if "code_pattern" in params else None
    system = params.get("code_system")
    label = "the required value set" if allowed else f"code system {system}"

    def ok(coding: Any) -> bool:
        if not isinstance(coding, dict):
            return False
        if allowed:
            return (coding.get("system"), coding.get("code")) in allowed
        return coding.get("system") == system and bool(pattern and pattern.fullmatch(str(coding.get("code", ""))))

    values = compiled_walk([compile_step(step) for step in steps])

    def check(resource: dict[str, Any], _values: Any) -> Iterator[Issue]:
        for value in values(resource):
            if isinstance(value, str):  # a bare code
                if allowed and not any(c == value for _, c in allowed):
                    yield Issue(f"{element}: code '{value}' is not allowed by its required binding", path=element,
                                code="code-invalid")
                continue
            codings = value.get("coding", []) if isinstance(value, dict) and "coding" in value else [value]
            if not any(ok(c) for c in codings):
                shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings if isinstance(c, dict))
                yield Issue(f"{element}: no coding from {label} (required binding); found {shown or 'none'}",
                            path=element, code="code-invalid")
    return check


def _near(a: str, b: str) -> bool:
    """A near miss of a fixed URL: differs only in case, a trailing slash, http(s), or British spelling."""
    def norm(u: str) -> str:
        return u.lower().rstrip("/").replace("http://", "https://").replace("organisation", "organization")
    return a != b and norm(a) == norm(b)


def _system(params: dict[str, Any]) -> Any:
    steps, element, fixed = params["path"], params["element"], params["system"]

    values = compiled_walk([compile_step(step) for step in steps])

    def check(resource: dict[str, Any], _values: Any) -> Iterator[Issue]:
        for value in values(resource):
            got = value.get("system") if isinstance(value, dict) else None
            if isinstance(got, str) and _near(got, fixed):
                yield Issue(f"{element}: system '{got}' is not the profile's fixed '{fixed}'", path=element,
                            code="value")
    return check


def _is_code(element: str, steps: list[dict[str, Any]]) -> bool:
    """Whether the element's R4 type is ``code`` (its values are codes, not free text)."""
    from harness.fhir.model import r4  # noqa: PLC0415 - the R4 table, only for must-support rules

    model = r4()
    rtype = element.split(".", 1)[0]
    if not model.has_type(rtype):
        return False
    state: tuple[str, str] = (rtype, "")
    info = None
    for step in steps:
        info = model.children(state).get(step["name"])
        if info is None:
            return False
        state = info.state
    return info is not None and info.type == "code"


def must_support_walk(params: dict[str, Any]) -> Callable[[Any], list[Issue]]:
    """The must-support rule's own judgement: every value on its paths that is empty or a placeholder."""
    elements = [(entry["element"], _is_code(entry["element"], entry["path"])) for entry in params["elements"]]
    tree = PathTree()
    for tag, entry in enumerate(params["elements"]):
        tree.add(entry["path"], tag)

    def walk(resource: Any) -> list[Issue]:
        found: list[tuple[int, Any]] = []
        tree.visit(resource, found)
        empty = [(tag, n) for n, (tag, value) in enumerate(found) if is_empty(value, elements[tag][1])]
        # in the rule's order of elements, each element's values in order
        return [Issue(f"{elements[tag][0]} is present but empty or a placeholder; omit data that is not held",
                      path=elements[tag][0], code="value") for tag, _n in sorted(empty)]
    return walk


def must_support_screen(params: dict[str, Any]) -> Callable[[Any], bool]:
    """A compiled schema that clears a resource the walk would find nothing in (harness.checks.empty_screen)."""
    paths = [(entry["path"], _is_code(entry["element"], entry["path"])) for entry in params["elements"]]
    return compile_screen(paths, PLACEHOLDERS)


def _must_support(params: dict[str, Any]) -> Any:
    walk = must_support_walk(params)
    screen: list[Callable[[Any], bool]] = []  # compiled on first use: jsonschema-rs loads only when needed

    def check(resource: dict[str, Any], _values: Any) -> list[Issue] | tuple[()]:
        if not screen:
            screen.append(must_support_screen(params))
        if screen[0](resource):
            return ()  # no must-support value is empty: the walk would find nothing
        return walk(resource)
    return check
