"""Element paths built lazily: walkers pass tuples and render a string only for a finding."""

from __future__ import annotations

from typing import Any

Path = Any  # a str (the root) or a (parent path, key, index) tuple


def render(path: Path) -> str:
    """``("Patient", "name", 0), "given", 1)`` style chains → ``Patient.name[0].given[1]``."""
    parts: list[str] = []
    while isinstance(path, tuple):
        path, key, index = path
        parts.append(key if index is None else f"{key}[{index}]")
    parts.append(path)
    return ".".join(reversed(parts))
