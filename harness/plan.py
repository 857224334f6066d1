"""A plan: the rules in force for one run, compiled once and grouped by resource type."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.checks import REGISTRY, CheckKind, Registry, RuleContext
from harness.fhirpath import CompiledPath, compile_path
from harness.fhirpath_schema import compile_screen, not_true_schema
from harness.packs.model import Pack, Rule
from harness.suites import Catalogue, Suite, in_force


@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    kind: CheckKind | None
    where: CompiledPath | None = None
    select: CompiledPath | None = None
    check: Any = None
    factory: Any = None
    broken: str | None = None
    screen: Any = None  # a JSON Schema under which the rule reports nothing on a resource (CheckKind.screen)
    clear: Any = None  # a Python test of the same (CheckKind.clear)
    unmatched: Any = None  # a JSON Schema under which the rule's ``where`` is not true: not its subject

    @property
    def scope(self) -> str:
        return self.kind.scope if self.kind else "broken"


@dataclass
class Plan:
    suite: Suite
    as_of: dt.date
    target_kind: str
    packs: list[Pack]
    rules: list[CompiledRule]
    upcoming: frozenset[str] = frozenset()  # ids of rules not yet in force, evaluated for the forecast only
    _by_type: dict[str, list[CompiledRule]] = field(default_factory=dict)
    _dataset_by_type: dict[str, list[tuple[CompiledRule, bool]]] = field(default_factory=dict)
    _screens: dict[tuple[str, str], Any] = field(default_factory=dict)

    def resource_rules(self, rtype: str) -> list[CompiledRule]:
        """Value- and resource-level rules that read this type (computed once per type)."""
        found = self._by_type.get(rtype)
        if found is None:
            found = [cr for cr in self.rules if cr.scope in ("value", "resource")
                     and ("*" in cr.rule.resources or rtype in cr.rule.resources)]
            self._by_type[rtype] = found
        return found

    def screen_test(self, rtype: str, which: str = "screen") -> Callable[[dict[str, Any]], bool] | None:
        """One compiled test of the rules' ``screen`` (or ``unmatched``) schemas this type meets, for the rules
        without a clear test; built once per type. None when there are none or it cannot be compiled: the
        rules then run one by one."""
        key = (rtype, which)
        if key not in self._screens:
            parts = [getattr(cr, which) for cr in self.resource_rules(rtype) if cr.clear is None]
            parts = [p for p in parts if p is not None]
            try:
                self._screens[key] = compile_screen(parts) if parts else None
            except Exception:  # noqa: BLE001 - a screen is an optimisation: without it the rules run in full
                self._screens[key] = None
        found: Callable[[dict[str, Any]], bool] | None = self._screens[key]
        return found

    def dataset_rules(self, rtype: str) -> list[tuple[CompiledRule, bool]]:
        """Dataset-level rules that read this type, each with whether the type is a subject."""
        found = self._dataset_by_type.get(rtype)
        if found is None:
            found = []
            for cr in self.rules:
                if cr.scope != "dataset" or cr.kind is None:
                    continue
                subject = "*" in cr.rule.resources or rtype in cr.rule.resources
                reads = list(cr.kind.reads(cr.rule.check)) if cr.kind.reads else []
                if subject or "*" in reads or rtype in reads:
                    found.append((cr, subject))
            self._dataset_by_type[rtype] = found
        return found


def compile_rule(rule: Rule, registry: Registry, terminology: Any, target: Any = None,
                 settings: dict[str, Any] | None = None, attestations: Any = None) -> CompiledRule:
    """Compile a rule; a failure makes a 'broken' rule whose result will be an error."""
    try:
        kind = registry.get(rule.kind)
    except KeyError as exc:
        return CompiledRule(rule, None, broken=str(exc.args[0]))
    compiled = CompiledRule(rule, kind)
    try:
        compiled.where = compile_path(rule.where) if rule.where else None
        compiled.select = compile_path(rule.select) if rule.select else None
        params = {k: v for k, v in rule.check.items() if k != "kind"}
        built = kind.build(params, RuleContext(rule.id, rule.resources, terminology, target, settings, attestations))
    except Exception as exc:  # noqa: BLE001 - any compile failure becomes this rule's 'error'
        compiled.broken = f"rule could not be compiled: {exc}"
        return compiled
    if kind.scope == "dataset":
        compiled.factory = built
    else:
        compiled.check = built
        _shortcuts(compiled, params)
    return compiled


def _shortcuts(compiled: CompiledRule, params: dict[str, Any]) -> None:
    """The rule's schemas and clear test: for a rule with a ``where``, when a resource is not its subject;
    else, where its kind has them, when it reports nothing. One that cannot be built is simply not used."""
    kind = compiled.kind
    if kind is None:
        return
    try:
        if compiled.rule.where:
            compiled.unmatched = not_true_schema(compiled.rule.where)
            return
        compiled.screen = kind.screen(params, compiled.rule.select) if kind.screen else None
        compiled.clear = kind.clear(params) if kind.clear else None
    except Exception:  # noqa: BLE001 - a shortcut is an optimisation: without it the rule runs in full
        compiled.screen = compiled.clear = compiled.unmatched = None


def build_plan(suite: Suite, catalogue: Catalogue, as_of: dt.date, target_kind: str,
               registry: Registry = REGISTRY, terminology: Any = None, target: Any = None,
               forecast_until: dt.date | None = None, attestations: Any = None) -> Plan:
    """The rules in force on ``as_of``; with ``forecast_until``, also those coming into force by then."""
    suite_rules = catalogue.rules_for(suite)
    rules = in_force(suite_rules, as_of, target_kind)
    upcoming: list[Rule] = []
    if forecast_until is not None:
        upcoming = [r for r in suite_rules if as_of < r.effective_from <= forecast_until
                    and target_kind in r.applies_to]
        rules += upcoming
    packs_used = sorted({r.pack for r in rules})
    all_packs = catalogue.packs()
    compiled = [compile_rule(r, registry, terminology, target, suite.properties, attestations) for r in rules]
    return Plan(suite, as_of, target_kind, [all_packs[p] for p in packs_used], compiled,
                frozenset(r.id for r in upcoming))
