"""Element constraints (invariants) compiled once: native code for the universal ones, FHIRPath for the rest.

Every constraint of a snapshot is compiled to ``fn(focus, resource, root) -> bool``. The ones
that hold on every resource or every element of a kind (``ext-1`` on each extension,
``dom-2``…``dom-6`` on each resource, ``txt-1``/``txt-2`` on each narrative, ``ref-1`` on each
reference, ``per-1`` on each period) are written natively, matched on key *and* expression, so a
profile that redefines one of those keys gets its own expression evaluated instead. All
others go through :mod:`harness.fhirpath` (its native subset, fhirpathpy behind it) with the
element as focus and ``%resource`` / ``%rootResource`` bound. A constraint that cannot be
compiled or raises on an instance raises :class:`NotEvaluated`; the validator lists it as not
evaluated, never as met.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from harness.fhir.xhtml import narrative_problems, narrative_text_empty
from harness.fhirpath import FHIRPathSyntaxError, compile_path

Check = Callable[[Any, dict[str, Any], dict[str, Any]], bool]


class NotEvaluated(Exception):
    """The constraint could not be evaluated (unsupported function, or an error on this instance)."""


@dataclass(frozen=True, slots=True)
class Invariant:
    key: str
    severity: str  # error | warning
    human: str
    expression: str
    check: Check
    base: str  # the FHIR path of the element it sits on (for messages and FHIRPath typing)

    @property
    def warning(self) -> bool:
        return self.severity != "error"

    @property
    def by_fhirpath(self) -> bool:
        """Whether its expression is evaluated as FHIRPath (not by one of the hand-written checks below)."""
        return self.check not in _HAND_WRITTEN


def holds(inv: Invariant, focus: Any, resource: dict[str, Any], root: dict[str, Any],
          not_evaluated: dict[str, str]) -> bool:
    """Whether the constraint holds; one that cannot be evaluated is recorded and not reported as broken."""
    try:
        return inv.check(focus, resource, root)
    except NotEvaluated as exc:
        not_evaluated.setdefault(inv.key, str(exc))
        return True


# --- natives -------------------------------------------------------------------------------

def _contained(focus: Any) -> list[dict[str, Any]]:
    """The contained resources that are objects (the structure rules report anything else)."""
    found = focus.get("contained") if isinstance(focus, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _ext_1(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    if not isinstance(focus, dict):
        return True
    has_value = any(k.startswith("value") for k in focus)
    return ("extension" in focus) != has_value


def _dom_2(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return not any("contained" in c for c in _contained(focus))


def _references(node: Any, out: set[str]) -> None:
    """Every reference-like string in a resource (``reference`` values, canonicals and uris starting '#')."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, str):
                    if value.startswith("#") or key == "reference":
                        out.add(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))


def _dom_3(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    contained = _contained(focus)
    if not contained:
        return True
    refs: set[str] = set()
    _references(focus, refs)
    if "#" in refs:
        return True  # a reference to the container itself makes every contained resource reachable
    return all(f"#{c.get('id')}" in refs for c in contained)


def _contained_meta_lacks(focus: Any, *keys: str) -> bool:
    """No contained resource's meta has any of ``keys`` (dom-4, dom-5)."""
    for c in _contained(focus):
        meta = c.get("meta")
        if isinstance(meta, dict) and any(k in meta for k in keys):
            return False
    return True


def _dom_4(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return _contained_meta_lacks(focus, "versionId", "lastUpdated")


def _dom_5(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return _contained_meta_lacks(focus, "security")


def _dom_6(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    text = focus.get("text") if isinstance(focus, dict) else None
    return isinstance(text, dict) and "div" in text


def _txt_1(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return not isinstance(focus, str) or not narrative_problems(focus)  # focus: the div's XHTML text


def _txt_2(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    return not isinstance(focus, str) or not narrative_text_empty(focus)


def _ref_1(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    ref = focus.get("reference") if isinstance(focus, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#") or ref == "#":
        return True  # '#' alone refers to the container
    return any(c.get("id") == ref[1:] for c in _contained(root))


def _instant(value: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The earliest and latest instant a FHIR date/dateTime may stand for, or None if unknown."""
    try:
        if "T" in value:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                return None
            return moment, moment
        parts = [int(p) for p in value.split("-")]
        year, month, day = [*parts, 0, 0][:3]
        start = dt.datetime(year, month or 1, day or 1, tzinfo=dt.UTC)
        if day:
            end = start + dt.timedelta(days=1)
        elif month:
            end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
        else:
            end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
        # a date without a zone may be in any zone from -14:00 to +14:00
        return start - dt.timedelta(hours=14), end + dt.timedelta(hours=14)
    except ValueError:
        return None


def _per_1(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    if not isinstance(focus, dict):
        return True
    start, end = focus.get("start"), focus.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return True
    if len(start) == len(end) and "T" not in start:
        return start <= end  # two dates of the same precision compare as text
    a, b = _instant(start), _instant(end)
    if a is None or b is None:
        raise NotEvaluated("period bounds are not comparable dates")
    if "T" in start and "T" in end:
        return a[0] <= b[0]
    if a[1] <= b[0]:
        return True
    if a[0] > b[1]:
        return False
    raise NotEvaluated("period bounds have different precisions and overlap")


def _rng_2(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
    if not isinstance(focus, dict):
        return True
    low, high = focus.get("low"), focus.get("high")
    if not isinstance(low, dict) or not isinstance(high, dict):
        return True
    a, b = low.get("value"), high.get("value")
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return True  # a bound without a value compares as empty, and empty satisfies "or"
    if (low.get("system"), low.get("code")) != (high.get("system"), high.get("code")):
        raise NotEvaluated("range bounds in different units need unit conversion")
    return bool(a <= b)


NATIVE: dict[tuple[str, str], Check] = {
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): _rng_2,
    ("ext-1", "extension.exists() != value.exists()"): _ext_1,
    ("dom-2", "contained.contained.empty()"): _dom_2,
    ("dom-4", "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()"): _dom_4,
    ("dom-5", "contained.meta.security.empty()"): _dom_5,
    ("dom-6", "text.`div`.exists()"): _dom_6,
    ("txt-1", "htmlChecks()"): _txt_1,
    ("txt-2", "htmlChecks()"): _txt_2,
    ("ref-1", "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
              "%rootResource.contained.id.trace('ids'))"): _ref_1,
    ("per-1", "start.hasValue().not() or end.hasValue().not() or (start <= end)"): _per_1,
}
NATIVE_BY_KEY = {"dom-3": _dom_3}  # dom-3's R4 expression is long; matched by its opening below
_HAND_WRITTEN = frozenset({*NATIVE.values(), *NATIVE_BY_KEY.values()})
_DOM_3_START = "contained.where((('#'+id in (%resource.descendants().reference"


def _compiled(expression: str, base: str) -> Check:
    try:
        path = compile_path(expression)
    except FHIRPathSyntaxError as exc:
        reason = str(exc)

        def broken(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
            raise NotEvaluated(reason)
        return broken

    def check(focus: Any, resource: dict[str, Any], root: dict[str, Any]) -> bool:
        try:
            answer = path.evaluate(focus, resource, root, base)
        except Exception as exc:  # noqa: BLE001 - any failure of the evaluator means "not evaluated"
            raise NotEvaluated(f"{type(exc).__name__}: {exc}"[:200]) from None
        # as the HL7 validator reads a constraint's result: empty is false, one boolean is itself
        if not answer:
            return False
        if len(answer) == 1 and isinstance(answer[0], bool):
            return answer[0]
        return True
    return check


@cache
def compile_invariant(key: str, severity: str, human: str, expression: str, base: str) -> Invariant:
    """One constraint, compiled once per process."""
    native = NATIVE.get((key.split("@", maxsplit=1)[0], expression))
    if native is None and key == "dom-3" and expression.startswith(_DOM_3_START):
        native = NATIVE_BY_KEY["dom-3"]
    return Invariant(key.split("@", maxsplit=1)[0], severity, human, expression,
                     native or _compiled(expression, base), base)
