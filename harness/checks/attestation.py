"""The ``attestation`` check kind: a requirement answered by a person, with evidence, not by data.

The builder returns ``fn() -> (Outcome, message, issues)``; the engine calls it once when the
run finishes. Answers come from the run's attestations file (see ``harness.attestations``).
"""

from __future__ import annotations

from typing import Any

from harness.attestations import Attestations
from harness.checks.registry import RuleContext, register
from harness.results import Issue, Outcome


@register("attestation", scope="attestation", params={
    "question": {"type": "string", "minLength": 1},
    "evidence": {"type": "array", "items": {"type": "string", "minLength": 1},
                 "description": "what evidence the answer must come with"},
})
def attestation(params: dict[str, Any], ctx: RuleContext) -> Any:
    answers: Attestations | None = ctx.attestations
    wanted = params.get("evidence", [])

    def answer() -> tuple[Outcome, str, list[Issue]]:
        found = answers.answers.get(ctx.rule_id) if answers else None
        if found is None:
            where = f" (not answered in {answers.source})" if answers else ""
            return Outcome.MANUAL, f"awaiting an attestation{where}: {params['question']}", []
        said = f"attested {'yes' if found.answer else 'no'} by {found.by} on {found.date}"
        if not found.answer:
            return Outcome.FAIL, said, [Issue(f"{said}: {params['question']}", code="business-rule")]
        if wanted and not found.evidence:
            return Outcome.MANUAL, f"{said} without the evidence asked for ({'; '.join(wanted)})", []
        shown = ", ".join(f"{e.path} (sha256 {e.sha256[:12]})" for e in found.evidence) or "none asked for"
        return Outcome.PASS, f"{said}; evidence: {shown}", []
    return answer
