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


def _walk(loader: Any, node: yaml.Node, ptr: Pointer, lines: dict[Pointer, int]) -> Any:
    lines[ptr] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key = str(key)
            out[key] = _walk(loader, value_node, (*ptr, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, (*ptr, i), lines) for i, item in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def load_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Parse one YAML file; a syntax error becomes a ConfigurationError with its line."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(Problem(f"cannot read: {exc}", name)) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Pointer, int] = {}
        data = None if node is None else _walk(loader, node, (), lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigurationError(Problem(f"YAML syntax: {exc.problem or exc}", name, line)) from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(Problem(f"YAML: {exc}", name)) from None
    finally:
        loader.dispose()
    return YamlDocument(name, data, text, lines)
