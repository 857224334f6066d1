"""What changed between two sets of rules: added, removed, and changed level, dates or check.

Used by ``care-assure packs diff OLD NEW`` (two versions of a pack or of the standards
directory) and ``care-assure suites diff A [B] --as-of D1 --to D2`` (what a supplier must meet on
one date that it did not on another: the work before the next milestone).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from harness.packs.model import Rule

COMPARED = ("level", "effective_from", "effective_until", "applies_to", "resources", "check", "where", "select",
            "clause", "title")


@dataclass(frozen=True, slots=True)
class RuleChange:
    rule: str
    change: str  # "added" | "removed" | "changed"
    level: str
    effective_from: str
    details: tuple[str, ...] = ()  # for "changed": "level MUST -> SHOULD", ...
    title: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "change": self.change, "level": self.level,
                "effective_from": self.effective_from, "details": list(self.details), "title": self.title}


def _show(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, frozenset | tuple):
        return ",".join(sorted(map(str, value)))
    return str(value)


def _field_changes(old: Rule, new: Rule) -> tuple[str, ...]:
    out = []
    for name in COMPARED:
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(f"{name}: changed" if name in ("check", "clause", "title") else
                       f"{name} {_show(a)} -> {_show(b)}")
    return tuple(out)


def diff_rules(old: Iterable[Rule], new: Iterable[Rule]) -> list[RuleChange]:
    before = {r.id: r for r in old}
    after = {r.id: r for r in new}
    changes = []
    for rid in sorted(set(before) | set(after)):
        a, b = before.get(rid), after.get(rid)
        if a is None and b is not None:
            changes.append(RuleChange(rid, "added", b.level.value, b.effective_from.isoformat(), (), b.title))
        elif b is None and a is not None:
            changes.append(RuleChange(rid, "removed", a.level.value, a.effective_from.isoformat(), (), a.title))
        elif a is not None and b is not None:
            details = _field_changes(a, b)
            if details:
                changes.append(RuleChange(rid, "changed", b.level.value, b.effective_from.isoformat(), details,
                                          b.title))
    return changes
