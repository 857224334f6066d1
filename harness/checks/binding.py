"""The ``binding`` check kind: a code is in a list given in the pack or in a value set."""

from __future__ import annotations

from typing import Any

from harness.checks.registry import RuleContext, register
from harness.checks.values import ValueCheck
from harness.results import Issue
from harness.terminology import Terminology
from harness.wording import json_kind


@register("binding", scope="value", needs_select=True, params={
    "system": {"type": "string", "minLength": 1},
    "codes": {"type": "array", "minItems": 1, "items": {"oneOf": [
        {"type": "string"},
        {"type": "object", "additionalProperties": False, "required": ["system", "code"],
         "properties": {"system": {"type": "string"}, "code": {"type": "string"},
                        "display": {"type": "string"}}},
    ]}},
    "valueset": {"type": "string", "minLength": 1},
})
def binding(params: dict[str, Any], ctx: RuleContext) -> ValueCheck:
    """Each selected code, Coding or CodeableConcept is in the allowed codes (required binding).

    A CodeableConcept conforms when at least one of its codings is in the set.
    """
    default_system = params.get("system")
    allowed: set[tuple[str | None, str]] = set()
    for item in params.get("codes", []):
        if isinstance(item, str):
            allowed.add((default_system, item))
        else:
            allowed.add((item["system"], item["code"]))
    if "valueset" in params:
        term: Terminology | None = ctx.terminology
        if term is None:
            raise ValueError(f"value set {params['valueset']} needs a FHIR package: pass --package-dir")
        allowed |= set(term.expand(params["valueset"]))
    if not allowed:
        raise ValueError("binding needs 'codes' or 'valueset'")
    label = params.get("valueset") or default_system or "the allowed codes"

    def in_set(system: Any, code: Any) -> bool:
        return (system, code) in allowed

    def check(value: Any) -> Issue | None:
        if isinstance(value, str):
            return None if in_set(default_system, value) else Issue(
                f"code '{value}' is not in {label}", code="code-invalid")
        if not isinstance(value, dict):
            return Issue(f"expected a code, Coding or CodeableConcept, found {json_kind(value)}",
                         code="structure")
        if "coding" in value or "text" in value:
            codings = value.get("coding") or []
            if any(isinstance(c, dict) and in_set(c.get("system"), c.get("code")) for c in codings):
                return None
            shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings if isinstance(c, dict))
            return Issue(f"no coding in {label} (found: {shown or 'text only'})", code="code-invalid")
        if in_set(value.get("system"), value.get("code")):
            return None
        return Issue(f"{value.get('system')}|{value.get('code')} is not in {label}", code="code-invalid")

    return check
