"""The canonical report: one deterministic JSON document per run.

Same inputs give the same bytes apart from ``run.id`` and the timestamps: keys are sorted,
rules keep plan order, findings are sorted and carry ids derived from their content.
Every other format (JUnit, console) is rendered from this document.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter
from typing import Any

import orjson

from harness.decision import Decision
from harness.results import Finding, Outcome, RuleResult, RunResult

SCHEMA_ID = "care-assure/report/v1"
OUTCOMES = tuple(o.value for o in Outcome)
SELF_ASSESSMENT = ("This is a supplier self-assessment produced with care-assure. It is not an "
                   "accreditation decision of the assurance team.")


def finding_id(f: Finding) -> str:
    text = "\x1f".join(str(x) for x in f.sort_key())
    return "F-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _finding(f: Finding) -> dict[str, Any]:
    loc = f.location
    return {
        "id": finding_id(f), "rule": f.rule, "resource_type": f.resource_type, "resource_id": f.resource_id,
        "location": str(loc) if loc else None,
        "file": loc.file if loc else None, "line": loc.line if loc else None,
        "pointer": loc.pointer if loc else None,
        **({"column": loc.column} if loc and loc.column else {}),
        "path": f.path, "message": f.message, "code": f.code, "kind": "error" if f.error else "failure",
    }


def _rule(r: RuleResult) -> dict[str, Any]:
    entry = {
        "id": r.rule, "pack": r.pack, "title": r.title, "level": r.level.value, "outcome": r.outcome.value,
        "standard": r.standard, "clause": r.clause, "remediation": r.remediation, "message": r.message,
        "counts": {"subjects": r.subjects, "failed": r.failed, "errors": r.errors,
                   "findings_shown": len(r.findings)},
    }
    if r.standard_title:
        entry["standard_title"] = r.standard_title
    return entry


def build_report(result: RunResult, decision: Decision, *, title: str, started: dt.datetime,
                 finished: dt.datetime, run_id: str | None = None,
                 evidence: dict[str, Any] | None = None, requests: list[str] | None = None,
                 forecast_until: dt.date | None = None) -> dict[str, Any]:
    outcomes = Counter(r.outcome.value for r in result.rules)
    rules = [_rule(r) for r in result.rules]
    run_extra = {} if evidence is None else {"evidence": evidence}
    extra: dict[str, Any] = {}
    if forecast_until is not None:
        # Rules coming into force after the run's date, evaluated on the same data; never part of the decision.
        extra["forecast"] = {"until": forecast_until.isoformat(), "rules": [
            {**_rule(u.result), "effective_from": u.effective_from} for u in result.upcoming]}
    return {
        **extra,
        "schema": SCHEMA_ID,
        "run": {
            **run_extra,
            "id": run_id or str(uuid.uuid4()),
            "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "suite": {"id": result.suite, "version": result.suite_version, "title": title},
            "as_of": result.as_of,
            "assessment": {"kind": "self-assessment", "statement": SELF_ASSESSMENT}
            if result.self_assessment else {"kind": "certification", "statement": ""},
            "target": {"kind": result.target_kind,
                       "inputs": [{"path": i.path, "sha256": i.sha256, "size": i.size} for i in result.inputs]},
            "harness": {"name": "care-assure", "version": result.harness_version},
            "packs": result.packs,
            "resources_read": result.resources_read,
            "resource_counts": result.resource_counts,
            **({"could_not_evaluate": result.could_not_evaluate} if result.could_not_evaluate else {}),
        },
        "decision": {
            "outcome": decision.outcome,
            "reasons": [vars_of(x) for x in decision.reasons],
            "warnings": [vars_of(x) for x in decision.warnings],
        },
        "rules": rules,
        "findings": [_finding(f) for f in result.findings()],
        "coverage": coverage(result, requests or []),
        "summary": {
            "rules": len(result.rules),
            "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES},
            "failures": sum(r.failed for r in result.rules),
            "errors": sum(r.errors for r in result.rules),
            "resources": result.resources_read,
        },
    }


def certify_report(report: dict[str, Any], rules: list[RuleResult], decision: Decision,
                   certification: dict[str, Any]) -> dict[str, Any]:
    """The assurance team's version of a submitted report: rule outcomes after waivers, the round's decision."""
    outcome_of = {r.rule: r for r in rules}
    new_rules = []
    for entry in report["rules"]:
        r = outcome_of.get(entry["id"])
        new_rules.append({**entry, "outcome": r.outcome.value, "message": r.message} if r else entry)
    outcomes = Counter(r["outcome"] for r in new_rules)
    run = {**report["run"], "assessment": {
        "kind": "certification",
        "statement": f"Decided by the assurance team in round {certification['round']} on "
                     f"{certification['decided']}; valid until {certification['expires']}."}}
    return {
        **{k: v for k, v in report.items() if k != "signature"},
        "run": run,
        "rules": new_rules,
        "decision": {"outcome": decision.outcome, "reasons": [vars_of(x) for x in decision.reasons],
                     "warnings": [vars_of(x) for x in decision.warnings]},
        "summary": {**report["summary"], "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES}},
        "certification": certification,
    }


def coverage(result: RunResult, requests: list[str]) -> dict[str, Any]:
    """What the run touched: resource types, subjects per rule, rules with no data, search parameters."""
    params = sorted({part.split("=", 1)[0] for url in requests if "?" in url
                     for part in url.split("?", 1)[1].split("&") if part})
    return {
        "resource_types": result.resource_counts,
        "subjects": {r.rule: r.subjects for r in result.rules},
        "without_data": [r.rule for r in result.rules if r.subjects == 0],
        "requests": len(requests),
        "search_parameters": params,
        "not_evaluated": {r.rule: r.not_evaluated for r in result.rules if r.not_evaluated},
    }


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def dumps(report: dict[str, Any]) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
