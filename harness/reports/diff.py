"""Run-to-run diff of two canonical reports: what newly fails, newly passes, findings in and out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.results import MET_OUTCOMES as MET


@dataclass
class ReportDiff:
    newly_failing: list[dict[str, Any]] = field(default_factory=list)
    newly_passing: list[dict[str, Any]] = field(default_factory=list)
    added_rules: list[str] = field(default_factory=list)
    removed_rules: list[str] = field(default_factory=list)
    findings_added: list[dict[str, Any]] = field(default_factory=list)
    findings_removed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.newly_failing)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("newly_failing", "newly_passing", "added_rules", "removed_rules",
                                               "findings_added", "findings_removed")}


def diff_reports(old: dict[str, Any], new: dict[str, Any]) -> ReportDiff:
    before = {r["id"]: r for r in old["rules"]}
    after = {r["id"]: r for r in new["rules"]}
    out = ReportDiff(added_rules=sorted(set(after) - set(before)), removed_rules=sorted(set(before) - set(after)))
    for rid, rule in after.items():
        was = before.get(rid)
        now_met = rule["outcome"] in MET
        if was is None:
            if not now_met:
                out.newly_failing.append(_brief(rule, None))
            continue
        was_met = was["outcome"] in MET
        if was_met and not now_met:
            out.newly_failing.append(_brief(rule, was))
        elif now_met and not was_met:
            out.newly_passing.append(_brief(rule, was))
    out.findings_added = _only_in(new["findings"], old["findings"])
    out.findings_removed = _only_in(old["findings"], new["findings"])
    return out


def finding_key(f: dict[str, Any]) -> tuple[str, ...]:
    """What a finding is about, not where the input happened to be: the same data in another folder,
    or renamed, gives the same key. Findings without a resource fall back to the file's name within
    its export (its folder left out), the pointer and the request."""
    if f.get("resource_id"):
        return (f["rule"], f.get("resource_type") or "", f["resource_id"], f.get("path") or "", f["message"])
    file = f.get("file") or ""
    inner = file.split("/", 1)[1] if "/" in file else file
    return (f["rule"], "", "", inner, f.get("pointer") or "", _without_exchange(f.get("location") or ""),
            f["message"])


def _without_exchange(location: str) -> str:
    return location.split(" [EX-", maxsplit=1)[0] if " [EX-" in location else ""


def _only_in(these: list[dict[str, Any]], others: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings of ``these`` with no counterpart in ``others`` (as many times as they are extra)."""
    remaining = Counter(finding_key(f) for f in others)
    out = []
    for f in sorted(these, key=finding_key):
        key = finding_key(f)
        if remaining[key]:
            remaining[key] -= 1
        else:
            out.append(f)
    return out


def _brief(rule: dict[str, Any], was: dict[str, Any] | None) -> dict[str, Any]:
    return {"rule": rule["id"], "level": rule["level"], "title": rule["title"],
            "was": was["outcome"] if was else None, "now": rule["outcome"]}
