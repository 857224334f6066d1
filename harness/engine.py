"""Run a plan over a target: stream resources, dispatch by type, accumulate, roll up.

The engine knows nothing of the CLI, reports or pytest. Each resource meets only the rules
for its type; findings are capped per rule while counts stay exact; dataset-level rules
report after the stream ends. Anything that goes wrong inside a check becomes an ``error``
for that rule, and a part of the target that cannot be read becomes an ``error`` of the
built-in read rule: neither is ever a pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness import __version__
from harness.packs.model import Rule, Standard
from harness.plan import CompiledRule, Plan
from harness.results import (
    NOT_EVALUATED,
    Finding,
    InputFile,
    Issue,
    Level,
    Location,
    Outcome,
    RuleResult,
    RunResult,
    Upcoming,
)
from harness.stopping import Interrupted
from harness.targets.base import Located, ReadError
from harness.wording import crash

_TOP_ELEMENT = re.compile(r"(?:[A-Z][A-Za-z]+\.)?([a-z][A-Za-z]*)")  # "Patient.identifier[0]" -> identifier
READ_RULE = Rule(
    id="HARNESS-READ-001", pack="care-assure.harness", title="Every part of the target can be read",
    level=Level.MUST,
    standard=Standard("care-assure", "Reading the supplier's data", __version__),
    clause="A target is assessed only on what could be read: unreadable files, lines or "
           "entries are errors.",
    applies_to=frozenset({"export", "api"}), effective_from=dt.date(2000, 1, 1), effective_until=None,
    resources=("*",), check={"kind": "read"},
    remediation="Fix the file or line named in the finding so it parses as FHIR JSON, NDJSON or XML.",
    when_absent="fail",
)


class Target(Protocol):
    kind: str

    def items(self, progress: Callable[[int], None] | None = None) -> Iterable[Located | ReadError]: ...

    def inputs(self) -> list[InputFile]: ...


@dataclass(slots=True)
class RuleState:
    """Per-rule counters and capped findings during a run; mergeable across shards."""

    compiled: CompiledRule
    cap: int
    subjects: int = 0
    failed: int = 0
    errors: int = 0
    findings: list[Finding] = field(default_factory=list)
    accumulator: Any = None
    first_error: str | None = None
    not_evaluated: dict[str, str] = field(default_factory=dict)
    bound: tuple[str, int] | None = None  # (file, line) of the last finding kept at the last trim, once full

    def add(self, issue: Issue, resource: dict[str, Any] | None, location: Location | None,
            path: str | None, error: bool = False) -> None:
        if issue.code == NOT_EVALUATED:
            key = issue.path or ""
            self.not_evaluated[key] = _least(self.not_evaluated.get(key), issue.message)
            return
        if error:
            self.errors += 1
            self.first_error = _least(self.first_error, issue.message)
        else:
            self.failed += 1
        if self.bound is not None and location is not None and (location.file or "", location.line or 0) > self.bound:
            return  # counted; past every finding kept so far, so it could never be shown
        rid = resource.get("id") if resource else None
        self.findings.append(Finding(
            rule=self.compiled.rule.id, message=issue.message,
            resource_type=resource.get("resourceType") if resource else None,
            resource_id=rid if isinstance(rid, str) else None, location=location,
            path=issue.path or path, code=issue.code, error=error,
        ))
        if len(self.findings) >= 2 * self.cap + 16:
            self._trim()

    def _trim(self) -> None:
        """Keep the first ``cap`` findings by their total order (file, line, pointer, resource, …).

        Which findings a report shows then depends only on the data, never on the order it was
        read in or how a run was split into shards: merging is associative and commutative.
        """
        self.findings.sort(key=Finding.sort_key)
        del self.findings[self.cap:]
        if len(self.findings) == self.cap and self.cap:
            last = self.findings[-1].location
            self.bound = (last.file or "", last.line or 0) if last else ("", 0)

    def kept(self) -> list[Finding]:
        self._trim()
        return self.findings

    def merge(self, other: RuleState) -> None:
        self.subjects += other.subjects
        self.failed += other.failed
        self.errors += other.errors
        if other.first_error is not None:
            self.first_error = _least(self.first_error, other.first_error)
        for key, why in other.not_evaluated.items():
            self.not_evaluated[key] = _least(self.not_evaluated.get(key), why)
        self.findings.extend(other.findings)
        self._trim()
        if self.accumulator is not None and other.accumulator is not None:
            self.accumulator.merge(other.accumulator)


def _least(a: str | None, b: str) -> str:
    """The smaller of two messages (so which one a rule reports does not depend on reading order)."""
    return b if a is None else min(a, b)


# Resources of a type each rule checks on its own before the type's screens are compiled into one schema
# (a few milliseconds a type: a small run, a supplier's CI, never pays it).
SCREEN_AFTER = 200
# Consecutive resources of one type checked stage by stage (``Run._check``): 1.4-1.5x one at a time on the
# reference export, the compiled schemas (several MiB a type) staying in cache; 16-128 measure alike.
BATCH_SWITCH = "CARE_ASSURE_BATCH"  # "1": one resource at a time through every rule (for comparisons)
_BATCH = os.environ.get(BATCH_SWITCH, "")
BATCH = min(max(int(_BATCH), 1), 4096) if _BATCH.isdigit() else 64
SCREENS_SWITCH = "CARE_ASSURE_SCREENS"  # "0": every rule checks every resource itself (for comparisons)


@dataclass(slots=True)
class _Group:
    """Rules asked together whether a resource is clear of them all (a screen or a shared clear test);
    when it is, each counts the resource as a subject and reports nothing, as its check would have —
    or, for a group of ``where`` schemas (``subjects`` False), the resource is none of theirs."""

    test: Callable[[dict[str, Any]], bool] | None
    rules: list[tuple[CompiledRule, RuleState]]
    subjects: bool = True
    cleared: int = 0  # resources cleared since the rules' states were last told (``Run.feed`` tells them)

    def settle(self) -> None:
        """Each rule counts the resources cleared as its subjects (one addition a rule, not one a resource)."""
        if self.subjects and self.cleared:
            for _cr, state in self.rules:
                state.subjects += self.cleared
        self.cleared = 0


@dataclass(slots=True)
class _TypeRules:
    """The rules one resource type meets, arranged for the feed loop."""

    plain: list[tuple[CompiledRule, RuleState]]
    groups: list[_Group]
    dataset: list[tuple[CompiledRule, bool, RuleState]]
    pending: list[tuple[_Group, str]]  # groups whose schemas are compiled into one test after SCREEN_AFTER
    seen: int = 0


class Run:
    """The mutable state of one run; ``feed`` items, then ``finish``."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        cap = plan.suite.policy.max_findings_per_rule
        self.states = {cr.rule.id: RuleState(cr, cap) for cr in plan.rules}
        for state in self.states.values():
            if state.compiled.factory is not None:
                state.accumulator = state.compiled.factory()
        self.read_state = RuleState(CompiledRule(READ_RULE, None), cap)
        self.counts: dict[str, int] = {}
        self.resources = 0
        self.stopped: str | None = None  # why the target could not be evaluated in full
        self._dispatch: dict[str, _TypeRules] = {}

    def _rules_for(self, rtype: str) -> _TypeRules:
        """The rules (with their states) a resource type meets, worked out once per type."""
        found = self._dispatch.get(rtype)
        if found is None:
            plain: list[tuple[CompiledRule, RuleState]] = []
            cleared: dict[int, _Group] = {}
            screened, unmatched = _Group(None, []), _Group(None, [], subjects=False)
            shortcuts = os.environ.get(SCREENS_SWITCH, "1") != "0"
            for cr in self.plan.resource_rules(rtype):
                entry = (cr, self.states[cr.rule.id])
                if not shortcuts:
                    plain.append(entry)
                elif cr.clear is not None:
                    cleared.setdefault(id(cr.clear), _Group(cr.clear, [])).rules.append(entry)
                elif cr.screen is not None:
                    screened.rules.append(entry)
                elif cr.unmatched is not None:
                    unmatched.rules.append(entry)
                else:
                    plain.append(entry)
            pending = [(g, which) for g, which in ((screened, "screen"), (unmatched, "unmatched")) if g.rules]
            dataset = [(cr, subject, self.states[cr.rule.id]) for cr, subject in self.plan.dataset_rules(rtype)]
            found = _TypeRules(plain, [*cleared.values(), *(g for g, _ in pending)], dataset, pending)
            self._dispatch[rtype] = found
        return found

    def feed(self, items: Iterable[Located | ReadError], stop: Callable[[], str | None] | None = None) -> None:
        """Every item through its rules; ``stop`` (a deadline or a signal) may end the stream early."""
        try:
            with _fewer_collections():
                self._feed(items, stop)
        finally:
            for rules in self._dispatch.values():
                for group in rules.groups:
                    group.settle()

    def _feed(self, items: Iterable[Located | ReadError], stop: Callable[[], str | None] | None) -> None:
        batch: list[Located] = []  # consecutive resources of one type, read and not yet checked
        for item in items:
            if stop is not None:
                reason = stop()
                if reason:
                    self.stopped = self.stopped or reason
                    break
            if isinstance(item, ReadError):  # said at once: a read error is no rule's subject
                self.read_state.add(Issue(item.message, None, "structure"), None, item.location, None,
                                    error=True)
                if item.fatal:
                    self.stopped = self.stopped or item.message
                    break
                continue
            if batch and (len(batch) >= BATCH or item.resource["resourceType"] != batch[0].resource["resourceType"]):
                full, batch = batch, []
                self._check(full)
            batch.append(item)
        if batch:  # what was read before the end (or the stop) is checked
            self._check(batch)
        self.resources = self.read_state.subjects

    def _check(self, batch: list[Located]) -> None:
        """A batch of resources of one type through their rules, stage by stage: each group's test (a
        compiled schema of several MiB) and each dataset rule takes the whole batch before the next, so its
        code and data stay in the processor's caches; plain rules go item by item. Each rule still meets
        the resources in reading order, so its findings are those of one resource at a time."""
        rtype = batch[0].resource["resourceType"]
        self.read_state.subjects += len(batch)
        self.counts[rtype] = self.counts.get(rtype, 0) + len(batch)
        rules = self._rules_for(rtype)
        plain = rules.plain
        if plain:  # item by item: rules of one kind that share a resource's outcome (structure) still do
            for item in batch:
                for cr, state in plain:
                    _apply(cr, state, item.resource, item.location, item.columns)
        for group in rules.groups:
            test = group.test
            for item in batch:
                resource = item.resource
                if test is not None and _clears(test, resource):
                    group.cleared += 1
                    continue
                for cr, state in group.rules:
                    _apply(cr, state, resource, item.location, item.columns)
        if rules.pending:
            rules.seen += len(batch)
            if rules.seen >= SCREEN_AFTER:
                for group, which in rules.pending:
                    group.test = self.plan.screen_test(rtype, which)
                rules.pending = []
        for cr, is_subject, state in rules.dataset:
            observe = state.accumulator.observe
            for item in batch:
                try:
                    subject = is_subject and (cr.where is None or _matches(cr, item.resource))
                    observe(item, subject)
                except Exception as exc:  # noqa: BLE001 - a crash in a check is that rule's error
                    state.add(Issue(f"could not evaluate: {crash(exc)}", None, "exception"),
                              item.resource, item.location, None, error=True)

    def merge(self, other: Run) -> None:
        """Fold another run of the same plan (another shard of the target) into this one."""
        for rule_id, state in self.states.items():
            state.merge(other.states[rule_id])
        self.read_state.merge(other.read_state)
        for rtype, n in other.counts.items():
            self.counts[rtype] = self.counts.get(rtype, 0) + n
        self.resources += other.resources

    def finish(self, inputs: list[InputFile], target_kind: str, self_assessment: bool) -> RunResult:
        if self.stopped is None and self.read_state.subjects == 0 and self.read_state.errors:
            self.stopped = "nothing in the target could be read"
        read = _read_result(self.read_state)
        if self.stopped and read.outcome is Outcome.FAIL:  # "holds no resources": it was not read to the end
            read = _result(self.read_state, Outcome.ERROR, f"not evaluated: {self.stopped}")
        results = [read]
        upcoming = []
        for cr in self.plan.rules:
            state = self.states[cr.rule.id]
            if self.stopped and cr.scope != "attestation" and (cr.scope == "dataset" or not state.failed):
                # a rule that saw part of the target (or none) has no verdict: failures in resources read
                # stand, but dataset rules (references, uniqueness, API behaviour) would judge a fragment
                result = _result(state, Outcome.ERROR, f"not evaluated: {self.stopped}")
            else:
                result = _finish_rule(state, self.counts)
            if cr.rule.id in self.plan.upcoming:
                upcoming.append(Upcoming(cr.rule.effective_from.isoformat(), result))
            else:
                results.append(result)
        suite = self.plan.suite
        return RunResult(
            suite=suite.id, suite_version=suite.version, as_of=self.plan.as_of.isoformat(),
            target_kind=target_kind, inputs=inputs,
            packs=[{"id": p.id, "version": p.version, "sha256": p.sha256} for p in self.plan.packs],
            rules=results, resources_read=self.resources, resource_counts=dict(sorted(self.counts.items())),
            harness_version=__version__, self_assessment=self_assessment, upcoming=upcoming,
            could_not_evaluate=self.stopped,
        )


# CPython's collector looks at its youngest generation every 700 new containers: several times per resource
# here, finding nothing (a resource's dicts and lists are freed by reference counting; they hold no cycles).
# While runs feed, it looks every GC_YOUNG instead (4-5 % of a run); the process's setting is put back when
# the last feeding run ends.
GC_YOUNG = 10_000
_gc_lock = threading.Lock()
_gc_feeding: list[tuple[int, int, int]] = []  # the setting from before the first run still feeding, per run


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    with _gc_lock:
        before = _gc_feeding[0] if _gc_feeding else gc.get_threshold()
        _gc_feeding.append(before)
        gc.set_threshold(max(before[0], GC_YOUNG), before[1], before[2])
    try:
        yield
    finally:
        with _gc_lock:
            _gc_feeding.pop()
            if not _gc_feeding:
                gc.set_threshold(*before)


def _clears(test: Callable[[dict[str, Any]], bool], resource: dict[str, Any]) -> bool:
    """Whether a group's test clears the resource; a test that fails to answer clears nothing."""
    try:
        return test(resource) is True
    except Exception:  # noqa: BLE001 - the rules then run one by one and report what is wrong
        return False


def _matches(cr: CompiledRule, resource: dict[str, Any]) -> bool:
    """Whether the rule's ``where`` holds; a non-boolean answer is an error, not a no."""
    if cr.where is None:
        return True
    answer = cr.where(resource)
    if answer == [True]:
        return True
    if answer and answer != [False]:
        raise ValueError(f"where '{cr.rule.where}' must give one boolean, gave {answer[:3]!r}")
    return False


def _in_column(location: Location, columns: dict[str, str] | None, path: str | None,
               value: Any = None) -> Location:
    """For a CSV row: the location with the column the finding's element (or checked value) came from."""
    if not columns:
        return location
    column = None
    found = _TOP_ELEMENT.match(path or "")
    if found:
        element = found[1]  # a choice element ("medication") names its typed form ("medicationCodeableConcept")
        column = columns.get(element) or next((c for k, c in columns.items() if k.startswith(element)), None)
    if column is None and value is not None:
        cell = value.get("code", value.get("value")) if isinstance(value, dict) else value
        column = columns.get(f"={cell}") if isinstance(cell, (str, int, float, bool)) else None
    return dataclasses.replace(location, column=column) if column else location


def _apply(cr: CompiledRule, state: RuleState, resource: dict[str, Any], location: Location,
           columns: dict[str, str] | None = None) -> None:
    try:
        if cr.where is not None and not _matches(cr, resource):
            return
        state.subjects += 1
        if cr.scope == "value":
            assert cr.select is not None
            check = cr.check
            for value in cr.select(resource):
                issue = check(value)
                if issue is not None:
                    state.add(issue, resource, _in_column(location, columns, issue.path or cr.rule.select, value),
                              cr.rule.select)
        else:
            values = cr.select(resource) if cr.select is not None else None
            for issue in cr.check(resource, values):
                state.add(issue, resource, _in_column(location, columns, issue.path or cr.rule.select),
                          cr.rule.select)
    except Exception as exc:  # noqa: BLE001 - a crash in a check is that rule's error
        state.add(Issue(f"could not evaluate: {type(exc).__name__}: {exc}", None, "exception"),
                  resource, location, cr.rule.select, error=True)


def _result(state: RuleState, outcome: Outcome, message: str | None) -> RuleResult:
    rule = state.compiled.rule
    return RuleResult(
        rule=rule.id, pack=rule.pack, level=rule.level, title=rule.title,
        standard=f"{rule.standard.id} {rule.standard.version}", clause=rule.clause,
        remediation=rule.remediation, outcome=outcome, subjects=state.subjects,
        failed=state.failed, errors=state.errors, message=message, findings=state.kept(),
        not_evaluated=dict(sorted(state.not_evaluated.items())), standard_title=rule.standard.title,
    )


def _read_result(state: RuleState) -> RuleResult:
    if state.errors:
        return _result(state, Outcome.ERROR, f"{state.errors} part(s) of the target could not be read")
    if state.subjects == 0:
        return _result(state, Outcome.FAIL, "the target holds no resources")
    return _result(state, Outcome.PASS, None)


def _absent(rule: Rule, counts: Mapping[str, int]) -> str:
    """Why a rule saw nothing: no resources of its type, or none that matched its ``where``."""
    types = ", ".join(rule.resources)
    read = sum(counts.get(t, 0) for t in rule.resources) if "*" not in rule.resources else sum(counts.values())
    if rule.where and read:
        shown = rule.where.removesuffix(".exists()")  # "matching X" already says it exists
        return f"no {types} matching `{shown}` ({read} {types} read)"
    return f"no {types} in the target"


def _finish_rule(state: RuleState, counts: Mapping[str, int]) -> RuleResult:
    cr = state.compiled
    if cr.broken:
        return _result(state, Outcome.ERROR, cr.broken)
    if cr.scope == "attestation":
        try:
            outcome, message, issues = cr.check()
        except Exception as exc:  # noqa: BLE001 - a crash in a check is that rule's error
            return _result(state, Outcome.ERROR, f"could not evaluate: {crash(exc)}")
        for issue in issues:
            state.add(issue, None, None, None)
        return _result(state, outcome, message)
    if state.accumulator is not None:
        acc = state.accumulator
        try:
            for issue, subject in acc.finish():
                state.add(issue, {"resourceType": subject.resource_type, "id": subject.resource_id},
                          subject.location, None, error=issue.error)
            state.failed += acc.overflow
        except Exception as exc:  # noqa: BLE001 - a crash in a check is that rule's error
            state.add(Issue(f"could not evaluate: {crash(exc)}", None, "exception"),
                      None, None, None, error=True)
        state.subjects = max(state.subjects, acc.subjects)
    rule = cr.rule
    if state.failed:
        return _result(state, Outcome.FAIL, f"{state.failed} finding(s) over {state.subjects} subject(s)")
    if state.errors:
        return _result(state, Outcome.ERROR, f"could not evaluate on {state.errors} subject(s): "
                                             f"{state.first_error}")
    if state.subjects == 0:
        if rule.when_absent == "fail":
            return _result(state, Outcome.FAIL, f"{_absent(rule, counts)}: the rule needs data to pass")
        return _result(state, Outcome.NOT_APPLICABLE, _absent(rule, counts))
    return _result(state, Outcome.PASS, None)


def run_plan(plan: Plan, target: Target, progress: Callable[[int], None] | None = None,
             self_assessment: bool = True, stop: Callable[[], str | None] | None = None) -> RunResult:
    """Execute a plan over a target and return the result (rules in plan order).

    ``stop`` is asked before each item; when it gives a reason (deadline, interrupt) the stream
    ends there and every rule without a failure becomes ``error`` ("not evaluated: …").
    """
    run = Run(plan)
    reading = getattr(stop, "reading", None)
    try:
        with reading() if reading is not None else contextlib.nullcontext():
            run.feed(target.items(progress), stop)
    except Interrupted as exc:
        run.stopped = run.stopped or f"interrupted by {exc.args[0] if exc.args else 'a signal'}"
    return run.finish(target.inputs(), target.kind, self_assessment)
