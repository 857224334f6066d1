"""FHIRPath written as JSON Schema never says "true" where the native evaluator does not.

``harness.fhirpath_schema`` gives, for an expression, schemas under which it evaluates natively
to true, to false and to empty. Each is checked against the evaluator itself (the generated
functions the rules run, and the closures they are generated from) on JSON built from the
expression's own names and literals — nested objects and arrays, nulls, ``_`` companions, choice
variants, numbers — for hand-picked expressions covering every construct, every expression of
the bundled packs and every R4 constraint the native evaluator runs.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import fhirpath as fp
from harness.fhir.model import r4
from harness.fhirpath_gen import generate
from harness.fhirpath_schema import combined, count_schema, path_of, truth
from harness.suites import Catalogue

CONSTRUCTS = [
    "status = 'final'", "status != 'final'", "'final' = status", "active = true", "active",
    "active.not()", "(status = 'a' or status = 'b').not()", "name.exists()", "name.empty()",
    "name.given.exists()", "name.where(use = 'official').exists()", "name.where(use = 'official').empty()",
    "name.exists(given.exists())", "name.all(given.exists())", "name.all(use = 'usual')",
    "a.exists() and b.exists()", "a.exists() or b.exists()", "a.exists() implies b.exists()",
    "a.exists() xor b.exists()", "a.empty() or b = 'x'", "a = 'x' and b = 'y'", "a = 'x' or b != 'y'",
    "a = 'x' implies (b.exists() and c.empty())", "(a | b).exists()", "(a | b).code = 'x'",
    "(code | medication).coding.where(system.startsWith('https://dmd')).exists()",
    "medication.reference.exists()", "value.exists()", "value.empty() or code.exists()",
    "reference.startsWith('#')", "reference.endsWith('/1')", "reference.contains('a.b')",
    "reference.startsWith('Patient/').not()", "system.where(contains('dmd')).exists()",
    "value.hasValue()", "coding.where(system = 'x' and code = 'y').exists() or text.exists()",
    "a.b.c = 'x'", "a.where(b = true).c.exists()", "true", "false", "true and a.exists()",
    "identifier.where(system = 'https://fhir.nhs.uk/Id/nhs-number').value.exists()",
    "exists()", "a.where($this = 'x').exists()", "a.where(exists()).exists()",
]


@cache
def _pack_expressions() -> list[str]:
    catalogue = Catalogue.default()
    out: set[str] = set()
    for pack in catalogue.packs().values():
        for rule in pack.rules:
            if rule.check.get("kind") == "fhirpath":
                out.add(rule.check["expression"])
            for e in (rule.where, rule.select):
                if e:
                    out.add(e)
    assert out, "no FHIRPath in the bundled packs"
    return sorted(out)


@cache
def _constraint_expressions() -> list[str]:
    out = {row[-1] for row in r4().constraints.values() if isinstance(row[-1], str)}
    native = []
    for e in sorted(out):
        try:
            if fp.compile_path(e).native:
                native.append(e)
        except fp.FHIRPathSyntaxError:
            continue
    assert len(native) > 50
    return native


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"'([^'\\]*)'")
_KEYWORDS = frozenset({"and", "or", "xor", "implies", "true", "false", "where", "exists", "empty", "all",
                       "not", "startsWith", "endsWith", "contains", "hasValue", "in", "is", "as"})


def _pools(expression: str) -> tuple[list[str], list[Any]]:
    """Keys (names, their choice variants and ``_`` companions) and leaf values to build instances from."""
    names = {w for w in _WORD.findall(_LITERAL.sub("", expression)) if w not in _KEYWORDS}
    keys = set(names)
    for n in names:
        suffixes = sorted(r4().choice_suffixes.get(n, ()))[:3]
        keys.update(n + s for s in suffixes)
    keys.update(["_" + k for k in list(keys)[:4]])
    keys.add("other")
    literals = set(_LITERAL.findall(expression))
    values: list[Any] = [None, True, False, 0, 1, 1.0, 2.5, "", "x", " "]
    for lit in sorted(literals):
        values += [lit, lit + "x", "x" + lit, lit[:-1]]
    return sorted(keys), values


def _instances(expression: str) -> st.SearchStrategy[Any]:
    keys, leaves = _pools(expression)
    leaf = st.sampled_from(leaves)
    tree = st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(keys), inner, max_size=4)), max_leaves=12)
    return st.dictionaries(st.sampled_from(keys), tree, max_size=5)


@cache
def _validators(expression: str) -> tuple[Any, Any, Any]:
    tree = fp.parse_strict(expression)
    return tuple(None if s is None or s is False else jsonschema_rs.validator_for(combined([s]))  # type: ignore[return-value]
                 for s in truth(tree))


def _evaluators(expression: str) -> list[Any]:
    """The generated function the rules run and the closures it is generated from."""
    ast = fp.parse_strict(expression)
    return [generate(ast, expression), fp._compile(ast)]


def _agree(expression: str, instance: Any) -> int:
    """Asserts each schema the instance satisfies gives the evaluators' own result; the number satisfied."""
    validators = _validators(expression)
    expected = ([True], [False], [])
    hits = 0
    for which, validator in enumerate(validators):
        if validator is None or not validator.is_valid(instance):
            continue
        hits += 1
        for evaluate in _evaluators(expression):
            try:
                got = evaluate([instance], (instance, instance, instance))
            except fp._Fallback:
                got = "handed to fhirpathpy"
            assert got == expected[which], (expression, ("true", "false", "empty")[which], instance, got)
    return hits


def _check_expression(expression: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(_instances(expression))
    def run(instance: Any) -> None:
        _agree(expression, instance)

    run()


@pytest.mark.parametrize("expression", CONSTRUCTS)
def test_each_construct_is_never_more_permissive_than_the_evaluator(expression: str) -> None:
    assert fp.compile_path(expression).native, expression
    assert any(s not in (None, False) for s in truth(fp.parse_strict(expression))), expression
    _check_expression(expression, 300)


def test_every_pack_expression() -> None:
    for expression in _pack_expressions():
        if fp.compile_path(expression).native:
            _check_expression(expression, 60)


def test_every_native_r4_constraint() -> None:
    for expression in _constraint_expressions():
        _check_expression(expression, 25)


def test_the_schemas_say_yes_where_they_should() -> None:
    """A schema that never said yes would pass the tests above: each says yes on a plain instance."""
    cases = [
        ("status = 'final'", {"status": "final"}, 0), ("status = 'final'", {"status": "draft"}, 1),
        ("status = 'final'", {}, 2), ("name.where(use = 'official').exists()", {"name": [{"use": "official"}]}, 0),
        ("name.where(use = 'official').exists()", {"name": [{"use": "usual"}]}, 1),
        ("a.exists() implies b.exists()", {"b": 1}, 0), ("a.exists() implies b.exists()", {"a": "x"}, 1),
        ("value.exists()", {"valueQuantity": {"value": 1}}, 0), ("reference.startsWith('#')", {"reference": "#a"}, 0),
        ("reference.startsWith('#')", {"reference": "a#"}, 1), ("(a | b).exists()", {"b": "x"}, 0),
    ]
    for expression, instance, which in cases:
        validator = _validators(expression)[which]
        assert validator is not None and validator.is_valid(instance), (expression, instance, which)
        assert _agree(expression, instance) >= 1


def test_what_the_schemas_refuse() -> None:
    """Companions, decimals in a union, two choice variants, null: the evaluator's hand-overs are refused."""
    refused = [
        ("status = 'final'", {"status": "final", "_status": {"id": "a"}}),
        ("(a | b).exists()", {"a": 1.5}),
        ("value.exists()", {"valueString": "a", "valueBoolean": True}),
        ("status = 'final'", {"status": ["final", "final"]}),
        ("name.exists()", {"name": [None]}),
    ]
    for expression, instance in refused:
        validator = _validators(expression)[0]
        assert validator is None or not validator.is_valid(instance), (expression, instance)


def test_count_of_a_select() -> None:
    nav = path_of("meta.versionId")
    assert nav is not None
    one = jsonschema_rs.validator_for(combined([count_schema(nav, 1, None)]))
    assert one.is_valid({"meta": {"versionId": "1"}})
    assert not one.is_valid({"meta": {}})
    assert not one.is_valid({"meta": [{"versionId": "1"}, {"versionId": "2"}]})
    optional = jsonschema_rs.validator_for(combined([count_schema(nav, 0, 1)]))
    assert optional.is_valid({}) and optional.is_valid({"meta": {"versionId": "1"}})
    assert count_schema(nav, 2, None) is None


@pytest.mark.parametrize("expression", [*CONSTRUCTS, "identifier.where(system = 'x').value",
                                        "(a | b | a).where(system = 'x')", "a.where(b = 'x').where(c = 'y').d"])
def test_generated_code_and_closures_agree_on_odd_json(expression: str) -> None:
    """The generated functions (with their shortcuts for ``where(name = 'text')`` and unions) give what the
    closures give on odd JSON too: nulls in arrays, companions, lists where one value is expected."""
    generated, closures = _evaluators(expression)

    def outcome(evaluate: Any, instance: Any) -> Any:
        try:
            return evaluate([instance], (instance, instance, instance))
        except fp._Fallback:
            return "handed to fhirpathpy"

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_instances(expression))
    def run(instance: Any) -> None:
        assert outcome(generated, instance) == outcome(closures, instance), instance

    run()
