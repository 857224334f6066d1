"""Read a canonical report back into the result model (the pytest plugin's workers use this)."""

from __future__ import annotations

from typing import Any

from harness.decision import Decision, Reason
from harness.results import Finding, InputFile, Level, Location, Outcome, RuleResult, RunResult


def _finding(f: dict[str, Any]) -> Finding:
    request = None
    file = f["file"]
    if file is None and f["location"]:
        suffix = f"#{f['pointer']}" if f["pointer"] else ""
        request = f["location"].removesuffix(suffix)
    return Finding(rule=f["rule"], message=f["message"], resource_type=f["resource_type"],
                   resource_id=f["resource_id"],
                   location=Location(file, f["line"], f["pointer"], request, f.get("column"))
                   if f["location"] else None,
                   path=f["path"], code=f["code"], error=f["kind"] == "error")


def run_result_from_report(report: dict[str, Any]) -> tuple[RunResult, Decision]:
    run = report["run"]
    findings: dict[str, list[Finding]] = {}
    for f in report["findings"]:
        findings.setdefault(f["rule"], []).append(_finding(f))
    rules = [RuleResult(
        rule=r["id"], pack=r["pack"], level=Level(r["level"]), title=r["title"], standard=r["standard"],
        clause=r["clause"], remediation=r["remediation"], outcome=Outcome(r["outcome"]),
        subjects=r["counts"]["subjects"], failed=r["counts"]["failed"], errors=r["counts"]["errors"],
        message=r["message"], findings=findings.get(r["id"], []),
        not_evaluated=report.get("coverage", {}).get("not_evaluated", {}).get(r["id"], {}),
        standard_title=r.get("standard_title", ""),
    ) for r in report["rules"]]
    result = RunResult(
        suite=run["suite"]["id"], suite_version=run["suite"]["version"], as_of=run["as_of"],
        target_kind=run["target"]["kind"],
        inputs=[InputFile(i["path"], i["sha256"], i["size"]) for i in run["target"]["inputs"]],
        packs=run["packs"], rules=rules, resources_read=run["resources_read"],
        resource_counts=run["resource_counts"], harness_version=run["harness"]["version"],
        self_assessment=run["assessment"]["kind"] == "self-assessment",
        could_not_evaluate=run.get("could_not_evaluate"),
    )
    d = report["decision"]
    decision = Decision(d["outcome"], tuple(Reason(**x) for x in d["reasons"]),
                        tuple(Reason(**x) for x in d["warnings"]))
    return result, decision
