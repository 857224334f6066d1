"""Bundle and identity rules of FHIR R4 that need more than one resource: the ``bundle`` and ``duplicate-id`` kinds.

``bundle`` reads each Bundle entry with its entry data (the readers pass ``fullUrl`` and, for
JSON, ``request``/``search``) and applies the R4 Bundle rules (bundle.html): a ``fullUrl`` is
absolute and agrees with the resource's type and id; search results carry ids; references in
a document or message Bundle resolve inside it, by the fullUrl rules (a relative reference is
resolved against the base of its entry's RESTful fullUrl; against a ``urn:uuid`` fullUrl only
by that uuid); in any Bundle, the entry a reference resolves to has the type it names. The
references of a Bundle are kept until the end of the run (one compact record each).

``duplicate-id`` fails a resource type and id seen twice in one target (versions of one
resource, with different ``meta.versionId``, are not duplicates; in a Bundle an entry is
named by its fullUrl, as bdl-7 says).

Both keep compact keys only, capped examples with exact counts, and merge like every
accumulator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.checks.dataset import path_of_reference, references_in, subject_of
from harness.checks.registry import (
    Accumulator,
    RuleContext,
    Subject,
    Where,
    register,
    subject_at,
    where_of,
    where_order,
)
from harness.fhir.paths import render
from harness.fhir.validator import reference_type
from harness.results import Issue
from harness.spill import SpillMap
from harness.targets.base import Located

EXAMPLES = 100
_RESOLVED_INSIDE = frozenset({"document", "message"})


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def _is_absolute(url: str) -> bool:
    """An absolute URI starts with a scheme (``https:``, ``urn:``…); ``Patient/1`` does not."""
    return _SCHEME.match(url) is not None


def _restful_base(full_url: str) -> str | None:
    """``https://x/fhir`` for ``https://x/fhir/Patient/1``; None for URNs and odd URLs."""
    if "://" not in full_url:
        return None
    parts = full_url.split("/_history/", 1)[0].rstrip("/").split("/")
    if len(parts) >= 5 and parts[-2][:1].isupper():
        return "/".join(parts[:-2])
    return None


@dataclass(slots=True)
class _Entry:
    full_url: str | None
    rtype: str
    rid: str | None


@dataclass(slots=True)
class _Ref:
    ref: str
    source: str | None
    subject: Subject
    path: str | None


@dataclass
class _Bundle:
    kind: str | None
    entries: list[_Entry] = field(default_factory=list)
    refs: list[_Ref] = field(default_factory=list)


@dataclass
class BundleAccumulator:
    found: list[tuple[Issue, Subject]] = field(default_factory=list)
    count: int = 0
    bundles: dict[str, _Bundle] = field(default_factory=dict)  # by file
    subjects: int = 0
    overflow: int = 0

    def _add(self, issue: Issue, subject: Subject) -> None:
        self.count += 1
        if len(self.found) < EXAMPLES:
            self.found.append((issue, subject))

    def observe(self, item: Located, is_subject: bool) -> None:
        if item.entry is None:
            return
        self.subjects += 1
        resource = item.resource
        subject = subject_of(resource, item.location)
        rtype = str(resource.get("resourceType"))
        rid = resource.get("id") if isinstance(resource.get("id"), str) else None
        full = item.entry.get("fullUrl")
        full_url = full if isinstance(full, str) else None
        if full_url is not None:
            if not _is_absolute(full_url):
                self._add(Issue(f"the fullUrl must be an absolute URL (not '{full_url}')", "Bundle.entry.fullUrl",
                                "invalid"), subject)
            elif _restful_base(full_url) is not None:
                tail = full_url.split("/_history/", 1)[0].rstrip("/").split("/")[-2:]
                if tail != [rtype, rid]:
                    self._add(Issue(f"the fullUrl '{full_url}' does not match the resource's type and id "
                                    f"({rtype}/{rid})", "Bundle.entry.fullUrl", "invalid"), subject)
        if item.bundle_type == "searchset":
            search = item.entry.get("search")
            mode = search.get("mode") if isinstance(search, dict) else None
            if mode == "outcome" and rtype != "OperationOutcome":
                self._add(Issue(f"an entry with search mode 'outcome' must be an OperationOutcome, not a {rtype}",
                                "Bundle.entry.search.mode", "invalid"), subject)
            elif mode != "outcome" and rid is None:
                self._add(Issue("search results must have ids", f"{rtype}.id", "required"), subject)
        bundle = self.bundles.setdefault(item.location.file or "", _Bundle(item.bundle_type))
        bundle.entries.append(_Entry(full_url, rtype, rid))
        for ref in references_in(item):
            if not ref.startswith("#"):
                bundle.refs.append(_Ref(ref, full_url, subject, render(path_of_reference(resource, ref))))

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, BundleAccumulator)
        self.count += other.count
        self.found.extend(other.found[: max(0, EXAMPLES - len(self.found))])
        for name, b in other.bundles.items():
            mine = self.bundles.setdefault(name, _Bundle(b.kind))
            mine.entries.extend(b.entries)
            mine.refs.extend(b.refs)
        self.subjects += other.subjects

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        for name in sorted(self.bundles):
            for issue, subject in _resolve(self.bundles[name]):
                self._add(issue, subject)
        self.overflow = self.count - len(self.found)
        yield from self.found


def _resolve(bundle: _Bundle) -> Iterator[tuple[Issue, Subject]]:
    by_url = {e.full_url: e for e in bundle.entries if e.full_url is not None}
    for r in bundle.refs:
        target = _match(r, by_url)
        named = reference_type(r.ref)
        if target is None and bundle.kind in _RESOLVED_INSIDE:
            yield Issue(f"can't find '{r.ref}' in the {bundle.kind} Bundle: in a {bundle.kind} every reference "
                        "must resolve to an entry", r.path, "not-found"), r.subject
        elif target is not None and named is not None and target.rtype != named:
            yield Issue(f"the entry that reference '{r.ref}' resolves to is a {target.rtype}, not a {named}",
                        r.path, "invalid"), r.subject


def _match(r: _Ref, by_url: dict[str, _Entry]) -> _Entry | None:
    ref = r.ref.split("/_history/", 1)[0]
    if _is_absolute(ref):
        return by_url.get(ref)
    base = _restful_base(r.source) if r.source else None
    if base is not None:
        return by_url.get(f"{base}/{ref}")
    parts = ref.split("/")
    if len(parts) == 2:
        # from an entry without a RESTful fullUrl, 'Type/id' can only meet an entry whose URN is that id
        return by_url.get(f"urn:uuid:{parts[1]}")
    return None


@register("bundle", scope="dataset", reads=lambda p: ["*"])
def bundle(params: dict[str, Any], ctx: RuleContext) -> Callable[[], BundleAccumulator]:
    """Bundle entries follow the R4 Bundle rules (fullUrl, search ids, references inside documents and messages)."""
    return BundleAccumulator


@dataclass
class DuplicateIdAccumulator:
    """Every occurrence of a resource key after its first, "first" by the total order of where it was read.

    So the same export gives the same findings however it is read or split: each shard keeps the
    least occurrence of each key, a merge keeps the lesser of two and counts the other.
    """

    first: SpillMap[Where] = field(default_factory=SpillMap)  # key -> its least occurrence (spills to disk)
    again: list[tuple[str, Where]] = field(default_factory=list)  # the least EXAMPLES other occurrences
    count: int = 0
    subjects: int = 0
    overflow: int = 0

    def observe(self, item: Located, is_subject: bool) -> None:
        resource = item.resource
        rid = resource.get("id")
        if not isinstance(rid, str) and not item.full_url:
            return
        self.subjects += 1
        meta = resource.get("meta")
        version = meta.get("versionId") if isinstance(meta, dict) else None
        # in a Bundle the fullUrl names the resource (bdl-7); elsewhere its type and id do
        key = (item.full_url or f"{resource.get('resourceType')}/{rid}") + (
            f"/_history/{version}" if isinstance(version, str) else "")
        self._meet(key, where_of(resource, item.location))

    def _meet(self, key: str, where: Where) -> None:
        held = self.first.get(key)
        if held is None:
            self.first.insert(key, where)
            return
        self.count += 1
        if where_order(where) < where_order(held):
            self.first[key], where = where, held
        self.again.append((key, where))
        if len(self.again) >= 2 * EXAMPLES:
            self._trim()

    def _trim(self) -> None:
        self.again.sort(key=lambda kw: (where_order(kw[1]), kw[0]))
        del self.again[EXAMPLES:]

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, DuplicateIdAccumulator)
        self.subjects += other.subjects
        self.count += other.count
        self.again.extend(other.again)
        for key, where in other.first.items():
            self._meet(key, where)
        self._trim()

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        self._trim()
        self.overflow = self.count - len(self.again)
        for key, where in self.again:
            yield Issue(f"{key} appears more than once in the target", "id", "duplicate"), subject_at(where)


@register("duplicate-id", scope="dataset", reads=lambda p: ["*"])
def duplicate_id(params: dict[str, Any], ctx: RuleContext) -> Callable[[], DuplicateIdAccumulator]:
    """No resource type and id appears twice in the target (one version of each resource)."""
    return DuplicateIdAccumulator
