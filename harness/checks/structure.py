"""The ``structure`` check kind: base FHIR R4 validity of a resource, one family per rule.

All five families (structure, cardinality, binding, invariant, reference) come from one walk of
the compiled R4 definitions (:mod:`harness.fhir.validator`); the walk's outcome is kept for the
resource being checked, so the rules of each family that follow read it instead of walking the
resource again. ``severity: warning`` selects the findings the definitions make warnings
(extensible bindings, warning constraints) for a SHOULD rule. Constraints that could not be
evaluated are reported with the code ``not-evaluated`` and listed in the report's coverage;
they are never counted as met, nor as failures of the supplier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.checks.registry import RuleContext, register
from harness.fhir.validator import FAMILIES, Outcome, validate
from harness.results import NOT_EVALUATED, Issue

_last: list[Any] = [None, None]  # [resource, outcome]: the memo of the resource being checked


def outcome_of(resource: dict[str, Any]) -> Outcome:
    """The validator's outcome for this resource, walked once however many rules ask."""
    if _last[0] is not resource:
        _last[1] = validate(resource)
        _last[0] = resource
    result: Outcome = _last[1]
    return result


@register("structure", scope="resource", params={
    "family": {"enum": list(FAMILIES), "description": "which family of base R4 problems the rule reports"},
    "severity": {"enum": ["error", "warning"],
                 "description": "errors (the default) or the definitions' warnings"},
})
def structure(params: dict[str, Any], ctx: RuleContext) -> Callable[[dict[str, Any], Any], Iterable[Issue]]:
    """Each resource is valid base FHIR R4 (one family: structure, cardinality, binding, invariant, reference)."""
    family = params.get("family", "structure")
    warnings = params.get("severity") == "warning"
    report_unevaluated = (family == "invariant" and not warnings) or (family == "binding" and not warnings)

    def check(resource: dict[str, Any], values: Any) -> Iterable[Issue]:
        outcome = outcome_of(resource)
        out = [Issue(v.message, v.path, v.code) for v in outcome.violations
               if v.family == family and v.warning == warnings]
        if report_unevaluated and outcome.not_evaluated:
            prefix = "binding:" if family == "binding" else ""
            out.extend(Issue(why, key, NOT_EVALUATED) for key, why in outcome.not_evaluated.items()
                       if key.startswith("binding:") == bool(prefix))
        return out

    return check
