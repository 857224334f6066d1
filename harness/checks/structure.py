"""The ``structure`` check kind (base FHIR R4 validity, one family per rule) and the profile kinds.

All five families (structure, cardinality, binding, invariant, reference) come from one walk of
the compiled R4 definitions (:mod:`harness.fhir.validator`); the walk's outcome is kept for the
resource being checked, so the rules of each family that follow read it instead of walking the
resource again. ``severity: warning`` selects the findings the definitions make warnings
(extensible bindings, warning constraints) for a SHOULD rule. Constraints that could not be
evaluated are reported with the code ``not-evaluated`` and listed in the report's coverage;
they are never counted as met, nor as failures of the supplier.

``conforms`` checks each resource against one named profile and ``declared-profiles`` against
the profiles it declares in ``meta.profile``, both compiled from the package the user gives
with ``--package-dir`` (:mod:`harness.fhir.profiles`); a declared profile that is not in the
package is listed as not evaluated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from harness.checks.registry import RuleContext, register
from harness.fhir.accept import clears, validate_fast
from harness.fhir.profiles import ProfileError, check_profile, profile_for
from harness.fhir.validator import FAMILIES, Outcome, validate
from harness.results import NOT_EVALUATED, Issue


class _Memo(threading.local):
    """The resource being checked and its outcome, per thread (runs in threads never share it)."""

    resource: Any = None
    outcome: Any = None


_memo = _Memo()


def outcome_of(resource: dict[str, Any]) -> Outcome:
    """The validator's outcome for this resource, walked once however many rules ask."""
    memo = _memo
    if memo.resource is not resource:
        memo.outcome = validate_fast(resource)
        memo.resource = resource
    result: Outcome = memo.outcome
    return result


def clean(resource: dict[str, Any]) -> bool:
    """The validator finds nothing at all in the resource: no rule of any family reports anything.

    Asked first, for each resource, by the rules' shared clear test: a resource the accept path clears
    keeps no outcome (no rule asks for one); any other is walked once, and its outcome kept for the
    rules that follow."""
    if clears(resource):
        return True
    memo = _memo
    memo.outcome = outcome = validate(resource)
    memo.resource = resource
    return not outcome.violations and not outcome.not_evaluated


@register("structure", scope="resource", clear=lambda params: clean, params={
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
        if not outcome.violations and not (report_unevaluated and outcome.not_evaluated):
            return ()  # the usual case: nothing for any family
        out = [Issue(v.message, v.path, v.code) for v in outcome.violations
               if v.family == family and v.warning == warnings]
        if report_unevaluated and outcome.not_evaluated:  # value sets to the binding rule, constraints to invariant
            out.extend(Issue(why, key, NOT_EVALUATED) for key, why in outcome.not_evaluated.items()
                       if key.startswith("binding:") == (family == "binding"))
        return out

    return check


def _profile_issues(outcome: Outcome, warnings: bool) -> list[Issue]:
    out = [Issue(v.message, v.path, v.code) for v in outcome.violations if v.warning == warnings]
    if not warnings:
        out.extend(Issue(why, key, NOT_EVALUATED) for key, why in outcome.not_evaluated.items())
    return out


@register("conforms", scope="resource", params={
    "profile": {"type": "string", "description": "canonical URL of a profile in the --package-dir package"},
    "severity": {"enum": ["error", "warning"]},
})
def conforms(params: dict[str, Any], ctx: RuleContext) -> Callable[[dict[str, Any], Any], Iterable[Issue]]:
    """Each resource meets a named profile's constraints (from the package given with --package-dir)."""
    package = ctx.terminology
    if package is None:
        raise ValueError(f"profile {params['profile']} needs its package: give --package-dir")
    profile = profile_for(params["profile"], package)  # a profile that cannot be compiled breaks the rule
    warnings = params.get("severity") == "warning"

    def check(resource: dict[str, Any], values: Any) -> Iterable[Issue]:
        outcome = Outcome()
        check_profile(resource, profile, package, outcome)
        return _profile_issues(outcome, warnings)

    return check


@register("declared-profiles", scope="resource", params={"severity": {"enum": ["error", "warning"]}})
def declared_profiles(params: dict[str, Any], ctx: RuleContext) -> Callable[[dict[str, Any], Any], Iterable[Issue]]:
    """Each resource meets the profiles it declares in meta.profile (those in the --package-dir package)."""
    package = ctx.terminology
    warnings = params.get("severity") == "warning"

    def check(resource: dict[str, Any], values: Any) -> Iterable[Issue]:
        meta = resource.get("meta")
        urls = meta.get("profile") if isinstance(meta, dict) else None
        outcome = Outcome()
        for url in urls if isinstance(urls, list) else ():
            if not isinstance(url, str):
                continue
            bare = url.split("|")[0]
            if package is None:
                outcome.not_evaluated.setdefault(f"profile:{bare}", "no package directory given (--package-dir)")
                continue
            try:
                profile = profile_for(bare, package)
            except ProfileError as exc:
                outcome.not_evaluated.setdefault(f"profile:{bare}", str(exc))
                continue
            check_profile(resource, profile, package, outcome)
        return _profile_issues(outcome, warnings)

    return check
