"""The must-support rules' schema screen never clears a resource the rule's walk would report.

``harness.checks.empty_screen`` lets one compiled schema answer "no must-support value is empty"
before the rule walks its paths. Checked for every must-support rule of the bundled packs on the
reference supplier's export (every defect switch on) and on mutations that put blanks,
placeholders, nulls and empty objects anywhere in a resource; and the case folding of the
placeholder words against Python's ``lower()`` on every code point.
"""

from __future__ import annotations

import copy
import json
import sys
from functools import cache
from typing import Any

import jsonschema_rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.export_generator import DEFECTS, Generator
from harness.checks.empty_screen import _placeholder_pattern
from harness.checks.profile import PLACEHOLDERS, must_support_screen, must_support_walk
from harness.suites import Catalogue
from tests.fhir_instances import json_paths, mutants_of, parent_at


@cache
def _rules() -> list[tuple[str, frozenset[str], Any, Any]]:
    catalogue = Catalogue.default()
    out = []
    for suite in ("asl-dscr-core", "uk-core-base"):
        for rule in catalogue.rules_for(catalogue.suite(suite)):
            if rule.check.get("kind") == "profile" and rule.check.get("constraint") == "must-support":
                out.append((rule.id, frozenset(rule.resources), must_support_walk(rule.check),
                            must_support_screen(rule.check)))
    assert out, "no must-support rules in the bundled suites"
    return out


def _judge(resource: dict[str, Any]) -> tuple[int, int]:
    """(rules that screened the resource, rules whose walk reported it); asserts none did both."""
    cleared = reported = 0
    rtype = resource.get("resourceType")
    for rule_id, types, walk, screen in _rules():
        if not isinstance(rtype, str) or (rtype not in types and "*" not in types):
            continue
        issues = walk(resource)
        reported += bool(issues)
        if screen(resource):
            cleared += 1
            assert not issues, (rule_id, issues[:2], json.dumps(resource)[:300])
    return cleared, reported


def test_the_screen_clears_clean_resources() -> None:
    everything = list(Generator(8, seed=3, defects=tuple(sorted(DEFECTS))).resources())
    assert sum(_judge(r)[0] for r in everything) > 0


BLANKS: list[Any] = ["", " ", "\u00a0", "\u2003x\u3000", "unknown", " UNKNOWN ", "n/a", "N/A", "Not Known",
                     "\u212aNOWN", "none", "?", "-", "tbc", "undefined", "null", None, {}, [], [None],
                     {"text": "unknown"}, {"coding": [{"code": " "}]}, [{}], "not  known", "known", 0, False]


@cache
def _pool() -> list[dict[str, Any]]:
    types = {t for _, ts, _, _ in _rules() for t in ts}
    return [r for r in Generator(4, seed=2).resources() if r["resourceType"] in types]


def _blank(draw: st.DrawFn, parent: Any, key: Any) -> None:
    parent[key] = copy.deepcopy(draw(st.sampled_from(BLANKS)))


def mutants() -> st.SearchStrategy[dict[str, Any]]:
    return mutants_of(_pool, _blank)


def test_a_blank_on_any_element_is_left_to_the_walk_which_reports_it() -> None:
    reported = 0
    for resource in _pool()[:12]:
        for path in json_paths(resource):
            for blank in ("", " unknown ", None, {}, {"text": "n/a"}, "\u212anown"):
                bad = copy.deepcopy(resource)
                parent = parent_at(bad, path)
                parent[path[-1]] = copy.deepcopy(blank)
                reported += _judge(bad)[1]
    assert reported > 50


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_no_blank_or_placeholder_anywhere_gets_past_the_screen(resource: dict[str, Any]) -> None:
    _judge(resource)


def test_every_character_python_lowers_into_a_placeholder_is_matched_by_the_screen() -> None:
    v = jsonschema_rs.validator_for({"type": "string", "pattern": _placeholder_pattern(PLACEHOLDERS)})
    letters = {c for w in PLACEHOLDERS for c in w}
    folding = {c for c in map(chr, range(sys.maxunicode + 1)) if c.lower() in letters}
    assert "\u212a" in folding  # the Kelvin sign lowers to 'k'
    for word in sorted(PLACEHOLDERS):
        for i, letter in enumerate(word):
            for c in folding:
                if c.lower() == letter:
                    variant = word[:i] + c + word[i + 1:]
                    assert v.is_valid(variant), (word, repr(c))
