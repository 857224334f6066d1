"""YAML with line numbers, so every error in a pack or suite can say where it is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigurationError, Problem

Pointer = tuple[str | int, ...]
# libyaml when available (10x faster); both give nodes with line marks
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class YamlDocument:
    """A parsed YAML file and the line on which each value starts."""

    path: str
    data: Any
    text: str
    lines: dict[Pointer, int] = field(default_factory=dict)

    def line_of(self, pointer: Pointer) -> int | None:
        """Line of the value at ``pointer``, or of its nearest parent that has one."""
        p = tuple(pointer)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]


MAX_DEPTH = 64  # nesting of mappings and sequences in one document
MAX_NODES = 1_000_000  # values built, aliases expanded: a "billion laughs" document stops here
MAX_BYTES = 8 * 1024 * 1024  # a pack, suite or attestations file larger than this is refused


_STR = "tag:yaml.org,2002:str"


class _Refused(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0
        self.open: set[int] = set()  # the mappings and sequences being built (a repeat is a recursive alias)


def _walk(loader: Any, node: yaml.Node, ptr: Pointer, lines: dict[Pointer, int], budget: _Budget | None = None) -> Any:
    """Build plain data from the node tree, within bounds on depth, expansion and recursion."""
    budget = budget or _Budget()
    line = node.start_mark.line + 1
    lines[ptr] = line
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise _Refused(f"the document expands to more than {MAX_NODES:,} values (aliases?)", line)
    if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if node.tag == _STR:
            return node.value  # what the constructor would make of it, without its bookkeeping (most values)
        value = loader.construct_object(node, deep=True)
        return value.isoformat() if isinstance(value, dt.date) else value
    if id(node) in budget.open:
        raise _Refused("a recursive alias: this value contains itself", line)
    if len(ptr) >= MAX_DEPTH:
        raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", line)
    budget.open.add(id(node))
    try:
        if isinstance(node, yaml.SequenceNode):
            return [_walk(loader, item, (*ptr, i), lines, budget) for i, item in enumerate(node.value)]
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused("mapping keys must be plain values", key_node.start_mark.line + 1)
            key = key_node.value if key_node.tag == _STR else str(loader.construct_object(key_node, deep=True))
            out[key] = _walk(loader, value_node, (*ptr, key), lines, budget)
        return out
    finally:
        budget.open.discard(id(node))


def load_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Parse one YAML file; a syntax error becomes a ConfigurationError with its line."""
    name = display or str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigurationError(Problem(f"file is larger than {MAX_BYTES // (1024 * 1024)} MB", name))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(Problem(f"cannot read: {exc}", name)) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Pointer, int] = {}
        data = None if node is None else _walk(loader, node, (), lines)
    except _Refused as exc:
        raise ConfigurationError(Problem(str(exc), name, exc.line)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigurationError(Problem(f"YAML syntax: {exc.problem or exc}", name, line)) from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(Problem(f"YAML: {exc}", name)) from None
    finally:
        loader.dispose()
    return YamlDocument(name, data, text, lines)
