"""The ``property`` check kind: a named Hypothesis property run against the API (writes!).

Runs only when the target allows writes (``--allow-writes``, against a sandbox). Example
count, deadline and seed come from the rule, then the suite, then the command line. A
failure is shrunk to a minimal counterexample, stored as evidence (``CE-…``) with the ids
of the exchanges that showed it, and can be re-run with ``care-assure replay``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.checks.registry import Accumulator, RuleContext, Subject, register
from harness.results import Issue, Location
from harness.targets.base import Located

DEFAULTS = {"examples": 20, "seed": 0, "deadline_ms": None}
# The names of harness.properties.api.PROPERTIES (a test keeps them equal): listed here so that
# registering the kind does not import Hypothesis, which only a property run needs.
PROPERTY_NAMES = ("if-match", "nhs-search", "paging", "rejection", "round-trip", "stateful")


@dataclass
class PropertyAccumulator:
    rule: str
    property: str
    settings: dict[str, Any]
    target: Any
    subjects: int = 0
    overflow: int = 0

    def observe(self, item: Located, is_subject: bool) -> None:
        return

    def merge(self, other: Accumulator) -> None:
        return

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        client = getattr(self.target, "client", None)
        if client is None:
            raise ValueError("property checks need an API target (--api)")
        if not getattr(self.target, "allow_writes", False):
            raise ValueError("property checks create and change records: pass --allow-writes, against a sandbox only")
        chosen = {**self.settings, **{k: v for k, v in getattr(self.target, "property_overrides", {}).items()
                                      if v is not None}}
        from harness.properties.api import PROPERTIES, run_property  # noqa: PLC0415 - Hypothesis, only when run
        from harness.properties.sandbox import clean_up  # noqa: PLC0415

        try:
            outcome = run_property(PROPERTIES[self.property], client, examples=chosen["examples"],
                                   seed=chosen["seed"], deadline_ms=chosen["deadline_ms"])
        finally:  # whatever happened, the sandbox is left as it was found, and the evidence says so
            cleanup = clean_up(client)
            client.evidence.add_artifact("CLEANUP", {"rule": self.rule, "property": self.property,
                                                     "summary": cleanup.describe(), **cleanup.as_dict()})
        self.subjects = outcome.examples_run
        if outcome.error:
            yield Issue(outcome.error, None, "exception", error=True), Subject(None, None, None)
            return
        if outcome.example is None:
            return
        first, last = outcome.exchanges
        ids = [ex.id for ex in client.evidence.exchanges[first:last]]
        ce_id = client.evidence.add_artifact("CE", {
            "rule": self.rule, "property": self.property, "seed": chosen["seed"], "examples": chosen["examples"],
            "synthetic": True, "example": outcome.example, "message": outcome.message, "exchanges": ids,
            "base_url": client.evidence.redactor.url(client.base)})
        yield Issue(f"{outcome.message}; minimal counterexample {ce_id} (seed {chosen['seed']}); "
                    f"re-run with: care-assure replay evidence/{ce_id}.json", None, "processing"), \
            Subject(None, None, Location(request=f"{ce_id}: {', '.join(ids)}"))


@register("property", scope="dataset", reads=lambda p: [], params={
    "property": {"enum": list(PROPERTY_NAMES)},
    "examples": {"type": "integer", "minimum": 1},
    "seed": {"type": "integer", "minimum": 0},
    "deadline_ms": {"type": "integer", "minimum": 1},
})
def property_kind(params: dict[str, Any], ctx: RuleContext) -> Callable[[], PropertyAccumulator]:
    """A named Hypothesis property holds for the API (run with --allow-writes)."""
    suite_settings = getattr(ctx, "settings", None) or {}
    chosen = {**DEFAULTS, **suite_settings, **{k: params[k] for k in DEFAULTS if k in params}}
    return lambda: PropertyAccumulator(ctx.rule_id, params["property"], chosen, ctx.target)
