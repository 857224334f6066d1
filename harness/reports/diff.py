"""Run-to-run diff of two canonical reports: what newly fails, newly passes, findings in and out."""

from __future__ import annotations

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
    old_findings = {f["id"]: f for f in old["findings"]}
    new_findings = {f["id"]: f for f in new["findings"]}
    out.findings_added = [new_findings[k] for k in sorted(set(new_findings) - set(old_findings))]
    out.findings_removed = [old_findings[k] for k in sorted(set(old_findings) - set(new_findings))]
    return out


def _brief(rule: dict[str, Any], was: dict[str, Any] | None) -> dict[str, Any]:
    return {"rule": rule["id"], "level": rule["level"], "title": rule["title"],
            "was": was["outcome"] if was else None, "now": rule["outcome"]}
