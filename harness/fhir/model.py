"""The R4 structure table as lookups: resource types, element rows, navigation by JSON name.

Both the FHIR XML reader and the ``structure`` check walk resources with the same state
machine: a state is ``(type name, dotted path inside that type)``; a child element name
moves to the next state, switching to the element's data type unless the element is an
inline backbone element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

TABLE_PATH = Path(__file__).with_name("r4_structure.json")
VALUESETS_PATH = Path(__file__).with_name("r4_valuesets.json")
INLINE_TYPES = frozenset({"BackboneElement", "Element"})


@dataclass(frozen=True, slots=True)
class ElementInfo:
    """One element of a type, as the JSON format names it."""

    name: str
    min: int
    many: bool
    type: str
    choice: str | None
    state: tuple[str, str]
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class R4Model:
    """Lookups over the generated R4 structure table."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.fhir_version: str = table["fhirVersion"]
        self.primitives: dict[str, dict[str, Any]] = table["primitives"]
        self.aliases: dict[str, str] = table["aliases"]
        self._types: dict[str, dict[str, Any]] = table["types"]
        self.constraints: dict[str, list[Any]] = table.get("constraints", {})
        self.extensions: dict[str, dict[str, Any]] = table.get("extensions", {})
        self.resource_types = frozenset(
            name for name, t in self._types.items()
            if t["kind"] == "resource" and not t["abstract"]
        )
        suffixes: dict[str, set[str]] = {}
        for t in self._types.values():
            for key, row in t["elements"].items():
                if row[3]:
                    base = row[3].rsplit(".", 1)[-1]
                    suffixes.setdefault(base, set()).add(key.rsplit(".", 1)[-1][len(base):])
        self.choice_suffixes = {k: frozenset(v) for k, v in suffixes.items()}
        self.choice_names = frozenset(suffixes)
        self._children: dict[tuple[str, str], dict[str, ElementInfo]] = {}
        self._referred: dict[str, int] | None = None

    def is_primitive(self, type_name: str) -> bool:
        return type_name in self.primitives

    def children(self, state: tuple[str, str]) -> dict[str, ElementInfo]:
        """Child elements of a state, keyed by JSON name (cached)."""
        found = self._children.get(state)
        if found is not None:
            return found
        type_name, rel = state
        if type_name in self.primitives:
            primitive = {
                "id": ElementInfo("id", 0, False, "string", None, ("string", "")),
                "extension": ElementInfo("extension", 0, True, "Extension", None, ("Extension", "")),
            }
            self._children[state] = primitive
            return primitive
        elements = self._types[type_name]["elements"]
        prefix = f"{rel}." if rel else ""
        out: dict[str, ElementInfo] = {}
        for key, row in elements.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):]
            if "." in name:
                continue
            out[name] = self._info(type_name, key, name, row, elements)
        self._children[state] = out
        return out

    def _info(self, type_name: str, key: str, name: str, row: list[Any],
              elements: dict[str, Any]) -> ElementInfo:
        min_, max_, etype, choice, content_ref = row[:5]
        extras = row[5] if len(row) > 5 else {}
        if content_ref is not None:
            target = elements[content_ref]
            return ElementInfo(name, min_, max_ == "*", target[2], None, (type_name, content_ref), extras)
        if etype in INLINE_TYPES and any(k.startswith(key + ".") for k in elements):
            return ElementInfo(name, min_, max_ == "*", etype, choice, (type_name, key), extras)
        etype = self.aliases.get(etype, etype)
        return ElementInfo(name, min_, max_ == "*", etype, choice, (etype, ""), extras)

    def root_constraints(self, type_name: str) -> list[str]:
        """Keys of the constraints on a type's root element (``dom-2`` on a resource, ``per-1`` on Period)."""
        t = self._types.get(type_name)
        return list(t.get("inv", [])) if t else []

    def has_type(self, type_name: str) -> bool:
        return type_name in self._types

    def referred_to(self) -> dict[str, int]:
        """For each resource type, how many reference elements of the resource types may point at it
        (``targetProfile``; "any resource" counts for none): Organization, Practitioner, Patient… lead."""
        found = self._referred
        if found is None:
            found = {}
            for t in self._types.values():
                if t["kind"] != "resource":
                    continue
                for row in t["elements"].values():
                    for target in (row[5].get("targets", ()) if len(row) > 5 else ()):
                        if target in self.resource_types:
                            found[target] = found.get(target, 0) + 1
            self._referred = found
        return found


@cache
def r4() -> R4Model:
    """The shared R4 model (loaded once per process)."""
    return R4Model(orjson.loads(TABLE_PATH.read_bytes()))
