"""The check-kind registry: a stable name mapped to a builder with a fixed signature.

A check kind has a *scope*:

- ``value``: the builder returns ``fn(value) -> Issue | None``, applied to each value the
  rule's ``select`` yields from each subject resource;
- ``resource``: the builder returns ``fn(resource, values) -> Iterable[Issue]``;
- ``dataset``: the builder returns a zero-argument factory of an :class:`Accumulator`, which
  sees every resource of the types it reads and reports at the end (accumulators merge, so
  sharded runs combine them);
- ``attestation``: the builder returns ``fn() -> (Outcome, message, issues)``, called once at the
  end of the run; it reads no resources.

Kinds declare a JSON Schema for their parameters, so packs are checked before they run.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from harness.results import Issue, Location, quick_pickle
from harness.targets.base import Located

Scope = Literal["value", "resource", "dataset", "attestation"]


@quick_pickle
@dataclass(frozen=True, slots=True)
class Subject:
    """The resource a dataset-level issue is about."""

    resource_type: str | None
    resource_id: str | None
    location: Location | None


def subject_order(s: Subject) -> tuple[str, int, str, str, str]:
    """The total order of where subjects were read (file, line, pointer, resource): merges keep the least."""
    loc = s.location
    return (loc.file or "" if loc else "", (loc.line or 0) if loc else 0, (loc.pointer or "") if loc else "",
            s.resource_type or "", s.resource_id or "")


# A subject as plain data, for indexes with an entry per resource (duplicate ids, pending references):
# a tuple of str and int costs a tenth of a Subject to build, pickle and unpickle.
# (resource type, resource id, file, line, pointer, request, column)
Where = tuple[str | None, str | None, str | None, int | None, str | None, str | None, str | None]


def where_of(resource: dict[str, Any], location: Location | None) -> Where:
    rid = resource.get("id")
    rtype = resource.get("resourceType")
    if location is None:
        return rtype, rid if isinstance(rid, str) else None, None, None, None, None, None
    return (rtype, rid if isinstance(rid, str) else None, location.file, location.line, location.pointer,
            location.request, location.column)


def where_order(w: Where) -> tuple[str, int, str, str, str]:
    """``subject_order`` of the subject ``w`` stands for."""
    return w[2] or "", w[3] or 0, w[4] or "", w[0] or "", w[1] or ""


def subject_at(w: Where) -> Subject:
    rtype, rid, file, line, pointer, request, column = w
    has_location = any(x is not None for x in (file, line, pointer, request, column))
    return Subject(rtype, rid, Location(file, line, pointer, request, column) if has_location else None)


class Accumulator(Protocol):
    """State for one dataset-level rule over a whole run."""

    def observe(self, item: Located, is_subject: bool) -> None: ...

    @property
    def overflow(self) -> int: ...

    def merge(self, other: Accumulator) -> None: ...

    def finish(self) -> Iterator[tuple[Issue, Subject]]: ...

    @property
    def subjects(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a builder may know about the rule it compiles and the run's resources."""

    rule_id: str
    resource_types: tuple[str, ...]
    terminology: Any = None
    target: Any = None
    settings: dict[str, Any] | None = None  # the suite's property settings
    attestations: Any = None  # the run's recorded answers (harness.attestations.Attestations)


@dataclass(frozen=True, slots=True)
class CheckKind:
    name: str
    scope: Scope
    params: dict[str, Any]
    build: Callable[[dict[str, Any], RuleContext], Any]
    needs_select: bool = False
    reads: Callable[[dict[str, Any]], Iterable[str]] | None = None
    summary: str = ""
    # (params, select) → a JSON Schema on the resource under which the check reports nothing, not even an
    # error (sufficient, not necessary); the engine asks one schema for all such rules of a type at once
    screen: Callable[[dict[str, Any], str | None], Any] | None = None
    # params → the same as a Python test; rules whose test is one function are asked once per resource
    clear: Callable[[dict[str, Any]], Callable[[dict[str, Any]], bool]] | None = None


@dataclass
class Registry:
    """A set of check kinds; tests may build their own."""

    kinds: dict[str, CheckKind] = field(default_factory=dict)

    def register(self, name: str, *, scope: Scope, params: dict[str, Any] | None = None,
                 needs_select: bool = False,
                 reads: Callable[[dict[str, Any]], Iterable[str]] | None = None,
                 screen: Callable[[dict[str, Any], str | None], Any] | None = None,
                 clear: Callable[[dict[str, Any]], Callable[[dict[str, Any]], bool]] | None = None,
                 ) -> Callable[[Callable[[dict[str, Any], RuleContext], Any]],
                               Callable[[dict[str, Any], RuleContext], Any]]:
        def decorate(build: Callable[[dict[str, Any], RuleContext], Any]
                     ) -> Callable[[dict[str, Any], RuleContext], Any]:
            if name in self.kinds:
                raise ValueError(f"check kind '{name}' registered twice")
            schema = {"type": "object", "additionalProperties": False,
                      "properties": {"kind": {"const": name}, **(params or {})}}
            doc = (build.__doc__ or "").strip().splitlines()
            self.kinds[name] = CheckKind(name, scope, schema, build, needs_select, reads,
                                         doc[0] if doc else "", screen, clear)
            return build
        return decorate

    def get(self, name: str) -> CheckKind:
        try:
            return self.kinds[name]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.kinds), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        return f"unknown check kind '{name}'{hint}"

    def __contains__(self, name: object) -> bool:
        return name in self.kinds


REGISTRY = Registry()
register = REGISTRY.register
