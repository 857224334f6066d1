"""The one result model: findings, rule results and the run result.

Every front end (console, report.json, JUnit, pytest items) renders these and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")


def quick_pickle(cls: type[T]) -> type[T]:
    """Pickle a slotted dataclass as its constructor and field values.

    The ``__getstate__`` that ``dataclass(slots=True)`` writes looks the fields up on every call
    (~25 µs an object); indexes spilled to disk and state sent between workers pickle millions.
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def __reduce__(self: Any) -> tuple[Any, ...]:
        return cls, tuple([getattr(self, n) for n in names])

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not-applicable"
    WAIVED = "waived"
    MANUAL = "manual"

    @property
    def counts_as_met(self) -> bool:
        """Only these outcomes count towards accreditation."""
        return self.value in MET_OUTCOMES


NOT_EVALUATED = "not-evaluated"  # an Issue code: the check could not evaluate this part (coverage, not a failure)
MET_OUTCOMES = frozenset({"pass", "not-applicable", "waived"})  # the outcome values that count as met


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


@quick_pickle
@dataclass(frozen=True, slots=True)
class Location:
    """Where a resource came from: a file and line (and pointer inside it), or a request."""

    file: str | None = None
    line: int | None = None
    pointer: str | None = None
    request: str | None = None
    column: str | None = None  # a CSV export's column

    def __str__(self) -> str:
        if self.request:
            return f"{self.request}#{self.pointer}" if self.pointer else self.request
        text = self.file or ""
        if self.line is not None:
            text += f":{self.line}"
        if self.column:
            text += f", column '{self.column}'"
        if self.pointer:
            text += f"#{self.pointer}"
        return text


@quick_pickle
@dataclass(frozen=True, slots=True)
class Issue:
    """What a check says about one subject: a message, the element path, a FHIR issue code."""

    message: str
    path: str | None = None
    code: str = "invalid"
    error: bool = False  # could not evaluate (the target or the harness failed), not a failure


@quick_pickle
@dataclass(frozen=True, slots=True)
class Finding:
    """One failure (or evaluation error) of one rule on one subject."""

    rule: str
    message: str
    resource_type: str | None = None
    resource_id: str | None = None
    location: Location | None = None
    path: str | None = None
    code: str = "invalid"
    error: bool = False

    def where(self) -> str:
        """Where, in words: the resource, then the file:line or request, then the element path."""
        subject = "/".join(x for x in (self.resource_type, self.resource_id) if x)
        parts = [subject, str(self.location) if self.location else "", self.path or ""]
        return " · ".join(p for p in parts if p) or "the target"

    def sort_key(self) -> tuple[Any, ...]:
        loc = self.location or Location()
        return (self.rule, loc.file or "", loc.line or 0, loc.pointer or "", *((loc.column,) if loc.column else ()),
                loc.request or "", self.resource_type or "", self.resource_id or "", self.path or "", self.message)


@dataclass(slots=True)
class RuleResult:
    """The outcome of one rule over the whole target."""

    rule: str
    pack: str
    level: Level
    title: str
    standard: str
    clause: str
    remediation: str
    outcome: Outcome
    subjects: int = 0
    failed: int = 0
    errors: int = 0
    message: str | None = None
    findings: list[Finding] = field(default_factory=list)
    not_evaluated: dict[str, str] = field(default_factory=dict)  # part (e.g. invariant key) → why
    standard_title: str = ""  # the standard's human title, to group rules by standard whatever its version string

    @property
    def findings_truncated(self) -> bool:
        return len(self.findings) < self.failed + self.errors


@dataclass(frozen=True, slots=True)
class InputFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A rule not yet in force on the run's date, evaluated to forecast the run on a later date."""

    effective_from: str
    result: RuleResult


@dataclass(slots=True)
class RunResult:
    """One execution of a suite on one target."""

    suite: str
    suite_version: str
    as_of: str
    target_kind: str
    inputs: list[InputFile]
    packs: list[dict[str, str]]
    rules: list[RuleResult]
    resources_read: int
    resource_counts: dict[str, int]
    harness_version: str
    self_assessment: bool = True
    upcoming: list[Upcoming] = field(default_factory=list)  # never part of the decision
    # why the target as a whole could not be evaluated (unreachable, authentication refused,
    # deadline, interrupted, nothing readable); the decision is then "could-not-evaluate"
    could_not_evaluate: str | None = None

    def rule(self, rule_id: str) -> RuleResult:
        for r in self.rules:
            if r.rule == rule_id:
                return r
        raise KeyError(rule_id)

    def findings(self) -> list[Finding]:
        return sorted((f for r in self.rules for f in r.findings), key=Finding.sort_key)
