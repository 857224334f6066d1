"""Accreditation policy: from rule results to a pass/fail decision with reasons."""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.results import Outcome, RuleResult
from harness.suites import Policy


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    level: str
    outcome: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # "pass" | "fail" | "could-not-evaluate"
    reasons: tuple[Reason, ...]
    warnings: tuple[Reason, ...]


def _reason(r: RuleResult) -> Reason:
    return Reason(r.rule, r.level.value, r.outcome.value, r.message or r.title)


COULD_NOT_EVALUATE = "could-not-evaluate"


def decide(rules: list[RuleResult], policy: Policy, could_not_evaluate: str | None = None) -> Decision:
    """Fail when any rule at a blocking level is not met (fail, error or manual); never pass on nothing.

    When the target as a whole could not be evaluated (``could_not_evaluate`` says why) and no
    blocking rule failed on what was read, the decision is neither pass nor fail but
    "could-not-evaluate": the tester's or the harness's problem, not the supplier's verdict.
    """
    blocking = [r for r in rules if r.level in policy.blocking_levels and not r.outcome.counts_as_met]
    warnings = [r for r in rules if r.level not in policy.blocking_levels
                and r.level in policy.warning_levels and not r.outcome.counts_as_met]
    reasons = [_reason(r) for r in blocking]
    if not any(r.rule != "HARNESS-READ-001" for r in rules):
        reasons.append(Reason("-", "MUST", "error", "no rules are in force for this suite, date and target"))
    warned = tuple(_reason(r) for r in warnings)
    if could_not_evaluate and not any(r.outcome is Outcome.FAIL for r in blocking):
        return Decision(COULD_NOT_EVALUATE, (Reason("-", "MUST", "error", could_not_evaluate), *reasons), warned)
    return Decision("fail" if reasons else "pass", tuple(reasons), warned)


def apply_waivers(rules: list[RuleResult], waived: set[str]) -> tuple[list[RuleResult], set[str]]:
    """Failing rules named by a waiver in force become 'waived'; errors and manual rules stay as they are.

    A waiver is a justified exemption from a requirement the target does not meet; it never
    stands in for a result the harness could not obtain. Returns the rules and the ids waived.
    """
    out, used = [], set()
    for r in rules:
        if r.rule in waived and r.outcome is Outcome.FAIL:
            out.append(replace(r, outcome=Outcome.WAIVED, message=f"waived: {r.message or r.title}"))
            used.add(r.rule)
        else:
            out.append(r)
    return out, used


def apply_witnesses(rules: list[RuleResult], answers: dict[str, tuple[bool, str, str]]) -> list[RuleResult]:
    """Manual rules an assessor witnessed become met ('pass') or not met ('fail').

    ``answers`` maps a rule id to (met, who, on which day). Only a rule still 'manual' takes an
    answer: a witness never overrides what the data showed, and an error stays an error.
    """
    out = []
    for r in rules:
        answer = answers.get(r.rule)
        if answer is None or r.outcome is not Outcome.MANUAL:
            out.append(r)
            continue
        met, who, day = answer
        out.append(replace(r, outcome=Outcome.PASS if met else Outcome.FAIL,
                           message=f"witnessed as {'met' if met else 'not met'} by {who} on {day}"))
    return out
