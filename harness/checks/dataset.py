"""Dataset-level check kinds: references resolve, related resources exist, keys are unique.

Each builds a factory of accumulators. An accumulator sees resources one at a time, keeps
only compact keys (never whole resources), and merges with another of its kind, so sharded
and distributed runs give the same answer. Memory grows with the number of distinct keys,
not with the size of the resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from harness.checks.registry import (
    Accumulator,
    RuleContext,
    Subject,
    Where,
    register,
    subject_at,
    subject_order,
    where_of,
    where_order,
)
from harness.fhir.paths import Path, render
from harness.fhirpath import compile_path
from harness.results import Issue, Location
from harness.spill import SpillMap, SpillSet
from harness.targets.base import Located

V = TypeVar("V")
LOCAL_EXAMPLES = 100  # dangling "#id" references kept to show; the count stays exact


def subject_of(resource: dict[str, Any], location: Location | None) -> Subject:
    rid = resource.get("id")
    return Subject(resource.get("resourceType"), rid if isinstance(rid, str) else None, location)


def reference_keys(reference: str) -> tuple[str, ...]:
    """Keys under which a reference can resolve: itself and its trailing ``Type/id``."""
    ref = reference.split("/_history/", 1)[0]
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and "://" in ref:
        return (ref, f"{parts[-2]}/{parts[-1]}")
    return (ref,)


def resource_keys(resource: dict[str, Any], full_url: str | None) -> list[str]:
    keys = []
    rid = resource.get("id")
    if isinstance(rid, str):
        keys.append(f"{resource.get('resourceType')}/{rid}")
    if full_url:
        keys.append(full_url)
    return keys


_REFERENCE = re.compile(rb'"reference"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
_KEY = b'"reference":"'
_BACKSLASH = ord("\\")


def references_in(item: Located) -> list[str]:
    """Every Reference.reference string in a resource (contained resources included).

    Scans the JSON text instead of walking the object: the reader's raw line when it has one, else
    the resource serialised again. A ``"reference"`` that is not inside a string (its quote not
    escaped) followed by a colon is a key. When every ``"reference"`` in the text is such a key with
    a plain string value (no space around the colon, no escapes: nearly every export), they are
    found by searching for the key; anything else goes to one regular expression.
    """
    raw = item.raw if item.raw is not None else orjson.dumps(item.resource)
    keys = raw.count(b'"reference"')
    if not keys:
        return []
    out = []
    find = raw.find
    at = find(_KEY)
    while at > 0 and raw[at - 1] != _BACKSLASH:  # (at 0 there is no object yet: not JSON we read)
        start = at + len(_KEY)
        end = find(b'"', start)
        text = raw[start:end]
        if end < 0 or _BACKSLASH in text:
            break
        out.append(text.decode("utf-8"))
        at = find(_KEY, end)
    else:
        if at < 0 and len(out) == keys:
            return out
    return references_by_pattern(raw)


def references_by_pattern(raw: bytes) -> list[str]:
    """The references in JSON text, by the regular expression alone (any spacing, escapes)."""
    out = []
    for found in _REFERENCE.finditer(raw):
        start = found.start()
        escapes = start - len(raw[:start].rstrip(b"\\"))
        if escapes % 2:
            continue  # the quote is escaped: text inside a string (a key like 'a"reference')
        text = found.group(1)
        out.append(orjson.loads(b'"' + text + b'"') if b"\\" in text else text.decode("utf-8"))
    return out


def follow(resource: dict[str, Any], path: Path) -> Any:
    """The value at a lazy element path, or None when the resource has no such element."""
    steps: list[tuple[str, int | None]] = []
    while isinstance(path, tuple):
        path, key, index = path
        steps.append((key, index))
    node: Any = resource
    for key, index in reversed(steps):
        if type(node) is not dict:
            return None
        node = node.get(key)
        if index is not None:
            if type(node) is not list or index >= len(node):
                return None
            node = node[index]
    return node


def path_of_reference(resource: dict[str, Any], reference: str) -> Path:
    """The element path of the first Reference whose ``reference`` is the given string."""
    stack: list[tuple[Any, Path]] = [(resource, resource.get("resourceType", ""))]
    while stack:
        node, path = stack.pop()
        if node.get("reference") == reference:
            return (path, "reference", None)
        for key, value in reversed(node.items()):
            if type(value) is dict:
                stack.append((value, (path, key, None)))
            elif type(value) is list:
                stack.extend((v, (path, key, i)) for i, v in reversed(list(enumerate(value))) if type(v) is dict)
    return None


# A reference target not seen yet: one referrer to show (the least by where it was read), its
# reference's element path, and how often the target is referred to. One example per target keeps
# memory small when a bulk export lists referrers before the resources they point at (the usual
# case); the count stays exact. A plain tuple: there is one per distinct target.
Pending = tuple[Where, Path, int]


def merge_pending(a: Pending, b: Pending) -> Pending:
    """Two shards' entries for one target: the counts add up, the example read first stays."""
    first = a if where_order(a[0]) <= where_order(b[0]) else b
    return first[0], first[1], a[2] + b[2]


@dataclass
class ReferenceAccumulator:
    allow_external: tuple[str, ...]
    known: SpillSet = field(default_factory=SpillSet)  # every resource key: spills to disk past a bound
    pending: SpillMap[Pending] = field(default_factory=SpillMap)
    local: list[tuple[Issue, Subject]] = field(default_factory=list)
    # (resource type, position among its references) → the path it had last time: checked, then reused
    hints: dict[tuple[str, int], Path] = field(default_factory=dict)
    local_count: int = 0
    subjects: int = 0
    overflow: int = 0

    def observe(self, item: Located, is_subject: bool) -> None:
        resource = item.resource
        rid = resource.get("id")
        if type(rid) is str:
            self.known.add(f"{resource.get('resourceType')}/{rid}")
        if item.full_url:
            self.known.add(item.full_url)
        if not is_subject:
            return
        self.subjects += 1
        subject: Subject | None = None
        for position, ref in enumerate(references_in(item)):
            if ref[:1] == "#":
                contained = resource.get("contained") or []
                if ref != "#" and ref[1:] not in {c.get("id") for c in contained if isinstance(c, dict)}:
                    subject = subject or subject_of(resource, item.location)
                    self.local_count += 1
                    self.local.append((Issue(f"'{ref}' names no contained resource",
                                             render(path_of_reference(resource, ref)), "not-found"), subject))
                    if len(self.local) >= 2 * LOCAL_EXAMPLES:
                        self._trim()
                continue
            if ref in self.known or (self.allow_external and ref.startswith(self.allow_external)):
                continue  # resolved already: nothing to remember
            pending = self.pending.get(ref)
            if pending is None:
                self.pending.insert(ref, (where_of(resource, item.location), self._path(resource, position, ref), 1))
            else:  # the example kept is the least by where it was read, in whatever order the files come
                where = where_of(resource, item.location)
                if where_order(where) < where_order(pending[0]):
                    self.pending[ref] = (where, self._path(resource, position, ref), pending[2] + 1)
                else:
                    self.pending[ref] = (pending[0], pending[1], pending[2] + 1)

    def _trim(self) -> None:
        """Keep the least LOCAL_EXAMPLES dangling "#id" references by where they were read."""
        self.local.sort(key=lambda found: (subject_order(found[1]), found[0].path or "", found[0].message))
        del self.local[LOCAL_EXAMPLES:]

    def _path(self, resource: dict[str, Any], position: int, ref: str) -> Path:
        """The element path of a reference; resources of one shape reuse the last one found."""
        key = (resource.get("resourceType", ""), position)
        hint = self.hints.get(key)
        if hint is not None and follow(resource, hint) == ref:
            return hint
        path = path_of_reference(resource, ref)
        self.hints[key] = path
        return path

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, ReferenceAccumulator)
        self.known |= other.known
        for ref, p in other.pending.items():
            mine = self.pending.get(ref)
            self.pending[ref] = p if mine is None else merge_pending(mine, p)
        self.local.extend(other.local)
        self._trim()
        self.local_count += other.local_count
        self.subjects += other.subjects

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        self._trim()
        self.overflow = self.local_count - len(self.local)
        yield from self.local
        for ref, (where, path, count) in _in_order(self.pending):  # streamed: millions at national scale
            if any(k in self.known for k in reference_keys(ref)):
                continue
            self.overflow += count - 1
            more = f" (referred to {count} times; the first is shown)" if count > 1 else ""
            yield Issue(f"reference '{ref}' does not resolve to any resource in the target{more}",
                        render(path) if path is not None else None, "not-found"), subject_at(where)


def _reads_all(params: dict[str, Any]) -> list[str]:
    return ["*"]


@register("reference", scope="dataset", reads=_reads_all, params={
    "allow_external": {"type": "array", "items": {"type": "string", "minLength": 1},
                       "description": "URL prefixes that may point outside the target"},
})
def reference(params: dict[str, Any], ctx: RuleContext) -> Callable[[], ReferenceAccumulator]:
    """Every reference in a subject resolves to a resource in the target (or a contained one)."""
    allow = tuple(params.get("allow_external", []))
    return lambda: ReferenceAccumulator(allow)


@dataclass
class ExistsPerAccumulator:
    related_type: str
    via: Any
    related_where: Any
    minimum: int
    subject_list: SpillMap[Subject] = field(default_factory=SpillMap)  # one per resident: spills past a bound
    aliases: SpillMap[str] = field(default_factory=SpillMap)
    hits: SpillMap[int] = field(default_factory=SpillMap)
    overflow: int = 0
    counted: int = 0  # subjects judged elsewhere (a Spark join) and not held here

    @property
    def subjects(self) -> int:
        return len(self.subject_list) + self.counted

    def observe(self, item: Located, is_subject: bool) -> None:
        resource, location, full_url = item.resource, item.location, item.full_url
        if is_subject:
            keys = resource_keys(resource, full_url)
            if keys:
                primary = keys[0]
                _keep_least(self.subject_list, primary, subject_of(resource, location))
                for k in keys:
                    _alias(self.aliases, k, primary)
        if resource.get("resourceType") != self.related_type:
            return
        if self.related_where is not None and self.related_where(resource) != [True]:
            return
        for value in self.via(resource):
            ref = value.get("reference") if isinstance(value, dict) else value
            if isinstance(ref, str):
                for key in reference_keys(ref):
                    self.hits[key] = self.hits.get(key, 0) + 1

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, ExistsPerAccumulator)
        for key, subject in other.subject_list.items():
            _keep_least(self.subject_list, key, subject)
        for alias, primary in other.aliases.items():
            _alias(self.aliases, alias, primary)
        self.counted += other.counted
        for k, n in other.hits.items():
            self.hits[k] = self.hits.get(k, 0) + n

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        counts: SpillMap[int] = SpillMap()
        for key, n in self.hits.items():
            primary = self.aliases.get(key)
            if primary is not None:
                counts[primary] = counts.get(primary, 0) + n
        for key, subject in _in_order(self.subject_list):
            found = counts.get(key, 0)
            if found < self.minimum:
                yield Issue(f"{found} {self.related_type} resource(s) refer to this one; "
                            f"at least {self.minimum} required", None, "required"), subject


def _in_order(index: MutableMapping[str, V]) -> Iterator[tuple[str, V]]:
    """Key order, streamed from a spilling index (a plain dict: the Spark engine's assembled results)."""
    if isinstance(index, SpillMap):
        return index.sorted_items()
    return iter(sorted(index.items()))


def _keep_least(held: MutableMapping[str, Subject], key: str, subject: Subject) -> None:
    """A key seen more than once (the same resource twice) keeps the occurrence read first, by where it is."""
    mine = held.get(key)
    if mine is None or subject_order(subject) < subject_order(mine):
        held[key] = subject


def _alias(aliases: MutableMapping[str, str], alias: str, primary: str) -> None:
    """An alias claimed by two resources names the lesser key, whatever order they were read in."""
    mine = aliases.get(alias)
    if mine is None or primary < mine:
        aliases[alias] = primary


@register("exists-per", scope="dataset", reads=lambda p: [p["related"]], params={
    "related": {"type": "string"},
    "via": {"type": "string", "minLength": 1},
    "related_where": {"type": "string", "minLength": 1},
    "min": {"type": "integer", "minimum": 1},
})
def exists_per(params: dict[str, Any], ctx: RuleContext) -> Callable[[], ExistsPerAccumulator]:
    """Each subject is referred to by at least ``min`` resources of the related type."""
    via = compile_path(params["via"])
    where = compile_path(params["related_where"]) if "related_where" in params else None
    return lambda: ExistsPerAccumulator(params["related"], via, where, params.get("min", 1))


@dataclass
class UniqueAccumulator:
    """Subjects by key value; every subject whose key is shared is reported (order-independent)."""

    key: Any
    label: str
    seen: SpillMap[list[Subject]] = field(default_factory=SpillMap)  # key value (as text) -> its subjects
    subjects: int = 0
    overflow: int = 0

    def observe(self, item: Located, is_subject: bool) -> None:
        resource, location = item.resource, item.location
        if not is_subject:
            return
        self.subjects += 1
        subject = subject_of(resource, location)
        for value in dict.fromkeys(_key_text(v) for v in self.key(resource)):
            held = self.seen.get(value)
            if held is None:
                self.seen[value] = [subject]
            else:  # one NHS number on every resident must not cost a copy per resident
                held.append(subject)
                self.seen[value] = held  # a spilled entry is a copy: put it back

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, UniqueAccumulator)
        self.subjects += other.subjects
        for value, subjects in other.seen.items():
            held = self.seen.get(value)
            if held is not None:
                held.extend(subjects)
            self.seen[value] = subjects if held is None else held

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        shared = [sorted(s, key=_subject_order) for s in self.seen.values() if len(s) > 1]
        for group in sorted(shared, key=lambda g: _subject_order(g[0])):
            for subject in group:
                others = [o for o in group if o is not subject]
                shown = ", ".join(f"{o.resource_type}/{o.resource_id}" + (f" ({o.location})" if o.location else "")
                                  for o in others[:3])
                more = f" and {len(others) - 3} more" if len(others) > 3 else ""
                yield Issue(f"{self.label} is the same as on {shown}{more}", None, "duplicate"), subject


def _subject_order(s: Subject) -> tuple[str, str, str]:
    return (s.resource_type or "", s.resource_id or "", str(s.location or ""))


def _key_text(value: Any) -> str:
    """A key value as text: a string as it is, anything else (numbers, codings) as canonical JSON after a NUL."""
    if isinstance(value, str):
        return value
    return "\x00" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


@register("unique", scope="dataset", params={
    "key": {"type": "string", "minLength": 1},
    "label": {"type": "string", "minLength": 1},
})
def unique(params: dict[str, Any], ctx: RuleContext) -> Callable[[], UniqueAccumulator]:
    """No two subjects share a value of ``key`` (a FHIRPath on the subject)."""
    key = compile_path(params["key"])
    label = params.get("label") or f"'{params['key']}'"
    return lambda: UniqueAccumulator(key, label)


@dataclass
class ReferencedAccumulator:
    """Subjects that other resources point at (by ``via``) must satisfy ``holds``; unreferenced ones are not judged."""

    referrers: list[tuple[str, Any]]  # (resource type, compiled path to its references)
    holds: Any
    message: str
    failing: dict[str, Subject] = field(default_factory=dict)  # subject key -> subject, when ``holds`` is false
    passing: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)
    referenced: set[str] = field(default_factory=set)
    overflow: int = 0
    counted: int = 0  # referenced subjects judged elsewhere (a Spark join) and not held here

    @property
    def subjects(self) -> int:
        return len({self.aliases[k] for k in self.referenced if k in self.aliases}) + self.counted

    def observe(self, item: Located, is_subject: bool) -> None:
        resource = item.resource
        if is_subject:
            keys = resource_keys(resource, item.full_url)
            if keys:
                if self.holds(resource) == [True]:
                    self.passing.add(keys[0])
                else:
                    _keep_least(self.failing, keys[0], subject_of(resource, item.location))
                for k in keys:
                    _alias(self.aliases, k, keys[0])
        rtype = resource.get("resourceType")
        for referrer, via in self.referrers:
            if rtype != referrer:
                continue
            for value in via(resource):
                ref = value.get("reference") if isinstance(value, dict) else value
                if isinstance(ref, str):
                    self.referenced.update(reference_keys(ref))

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, ReferencedAccumulator)
        for key, subject in other.failing.items():
            _keep_least(self.failing, key, subject)
        self.passing |= other.passing
        for alias, primary in other.aliases.items():
            _alias(self.aliases, alias, primary)
        self.referenced |= other.referenced
        self.counted += other.counted

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        named = {self.aliases[k] for k in self.referenced if k in self.aliases}
        for key in sorted(named & set(self.failing)):
            yield Issue(self.message, None, "business-rule"), self.failing[key]


@register("referenced", scope="dataset", reads=lambda p: [r["resource"] for r in p["referrers"]], params={
    "referrers": {"type": "array", "minItems": 1, "items": {
        "type": "object", "additionalProperties": False, "required": ["resource", "via"],
        "properties": {"resource": {"type": "string"}, "via": {"type": "string", "minLength": 1}}}},
    "holds": {"type": "string", "minLength": 1},
    "message": {"type": "string", "minLength": 1},
})
def referenced(params: dict[str, Any], ctx: RuleContext) -> Callable[[], ReferencedAccumulator]:
    """Each subject that a referrer points at (e.g. the Organization a Patient's managingOrganization names)
    satisfies ``holds``, whatever else it is; subjects nothing points at are not judged."""
    referrers = [(r["resource"], compile_path(r["via"])) for r in params["referrers"]]
    holds = compile_path(params["holds"])
    return lambda: ReferencedAccumulator(referrers, holds, params["message"])
