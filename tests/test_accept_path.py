"""The validator's fast accept path never clears a resource the walk would find anything in.

``harness.fhir.accept`` lets a JSON Schema (jsonschema-rs) and a small residual stand in for the
Python walk on resources they accept. Its one duty is soundness: accepted ⇒ the walk finds no
violation and nothing it cannot evaluate. Checked on every corpus resource, on the reference
supplier's export with every defect switch, on hostile mutations of accepted resources, and on
generated values for every primitive type. And it must engage: a clean export is accepted.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import decimal
import gc
import json
import sys
from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.export_generator import DEFECTS, Generator
from harness.errors import ConfigurationError
from harness.fhir import accept
from harness.fhir.accept import NOT_SPACE, PRIMITIVES, PY_SPACE, accepted, acceptor, schema_of, validate_fast
from harness.fhir.model import r4
from harness.fhir.package import read_resource
from harness.fhir.validator import Outcome, Slot, _Ctx, check_value, node, validate
from tests.conftest import DATA
from tests.fhir_instances import mutants_of


@pytest.fixture(autouse=True, scope="module")
def _give_memory_back() -> Iterator[None]:
    """These tests compile a schema for every resource type in the corpus (~100, a few MiB each); a
    child process forked later inherits the worker's resident size in its peak, and the hostile-input
    tests measure that peak. Hand it back when done."""
    yield
    acceptor.cache_clear()
    _corpus.cache_clear()
    _pool.cache_clear()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _clean(resource: Any) -> bool:
    out = validate(resource)
    return not out.violations and not out.not_evaluated


def _assert_sound(resource: Any, where: str) -> bool:
    ok = accepted(resource)
    if ok:
        out = validate(resource)
        assert not out.violations and not out.not_evaluated, (where, out.violations[:3], out.not_evaluated)
    return ok


def _inside(data: Any) -> list[dict[str, Any]]:
    """A file's resources, Bundle entries and contained resources included (each also checked alone)."""
    found: list[dict[str, Any]] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("resourceType"), str):
                found.append(item)
            stack.extend(v for k, v in item.items() if k in ("entry", "resource", "contained"))
        elif isinstance(item, list):
            stack.extend(item)
    return found


@cache
def _corpus() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for folder in ("fhir-r4/examples", "fhir-test-cases-r4", "ukcore-current"):
        for f in sorted((DATA / folder).rglob("*.json")):
            if f.name in ("manifest.json", "package.json", "fhirpkg.lock.json"):
                continue
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            out += [(f.name, r) for r in _inside(data)]
    for f in sorted((DATA / "ukcore-stu2" / "examples").glob("*.xml")):
        try:
            resource = read_resource(f, r4().resource_types)
        except ConfigurationError:
            continue
        if resource:
            out += [(f.name, r) for r in _inside(resource)]
    return out


def test_every_corpus_resource_the_path_accepts_is_one_the_walk_finds_clean() -> None:
    corpus = _corpus()
    assert len(corpus) > 400
    taken = sum(_assert_sound(r, name) for name, r in corpus)
    clean = sum(_clean(r) for _, r in corpus)
    assert 0 < taken <= clean


def test_the_reference_export_with_every_defect_is_judged_as_the_walk_judges_it() -> None:
    everything = list(Generator(8, seed=3, defects=tuple(sorted(DEFECTS))).resources())
    for r in everything:
        _assert_sound(r, f"{r['resourceType']}/{r.get('id')}")
        assert validate_fast(r) == validate(r)


def test_a_type_is_walked_until_it_has_been_seen_often_enough_to_pay_for_its_schema(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accept._run, "warm_up", 3)
    monkeypatch.setattr(accept, "_walked", {})
    taken: list[Any] = []
    monkeypatch.setattr(accept, "_accepted", lambda _rtype, r: taken.append(r) or True)
    resources = [r for r in Generator(4, seed=1).resources() if r["resourceType"] == "Observation"][:5]
    for r in resources:
        accept.validate_fast(r)
    assert taken == resources[3:]


def test_a_run_over_a_large_export_builds_each_schema_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past LARGE_EXPORT bytes the first resource of a type takes the accept path; below, the warm-up
    walks; either way the setting lasts for the run only."""
    resources = [r for r in Generator(4, seed=1).resources() if r["resourceType"] == "Observation"][:3]
    for size, expected in ((accept.LARGE_EXPORT, resources), (accept.LARGE_EXPORT - 1, [])):
        monkeypatch.setattr(accept, "_walked", {})
        taken: list[Any] = []
        monkeypatch.setattr(accept, "_accepted", lambda _rtype, r, taken=taken: taken.append(r) or True)
        with accept.sized_for(size):
            for r in resources:
                accept.validate_fast(r)
        assert taken == expected
        assert accept._run.warm_up == accept.WARM_UP


def test_a_clean_export_goes_through_the_accept_path() -> None:
    resources = list(Generator(20, seed=5).resources())
    assert all(_clean(r) for r in resources)
    taken = [r for r in resources if accepted(r)]
    assert len(taken) >= 0.95 * len(resources), {r["resourceType"] for r in resources if not accepted(r)}


@pytest.mark.parametrize(("change", "why"), [
    (lambda o: o.update(valueInteger=1.0) or o.pop("valueQuantity"), "a JSON Schema integer, not FHIR's"),
    (lambda o: o.update(effectiveDateTime="2025-02-29T09:00:00Z"), "not a real date"),
    (lambda o: o.update(status="final\x1c\x1cx"), "Python whitespace Rust's regex does not know"),
    (lambda o: o["subject"].update(reference="#nobody"), "a contained reference"),
    (lambda o: o["subject"].update(reference="Practitioner/x"), "a target type the element refuses"),
    (lambda o: o["subject"].update(reference="Patient?identifier=1"), "a search URL"),
    (lambda o: o.pop("text"), "dom-6: no narrative"),
    (lambda o: o["text"].update(div="<div xmlns=\"http://www.w3.org/1999/xhtml\"><script/></div>"), "txt-1"),
    (lambda o: o["valueQuantity"].pop("system"), "qty-3"),
    (lambda o: o.update(dataAbsentReason={"text": "x"}), "obs-6"),
    (lambda o: o.update(extension=[{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                                    "valueAddress": {"city": "Leeds"}}]), "a core extension out of context"),
    (lambda o: o.update(extension=[{"url": "https://example.org/x", "valueString": "a",
                                    "extension": [{"url": "b", "valueString": "c"}]}]), "ext-1"),
    (lambda o: o.update(effectivePeriod={"start": "2026-02-02", "end": "2026-01-01"}) or
     o.pop("effectiveDateTime"), "per-1"),
    (lambda o: o.update(contained=[{"resourceType": "Basic", "id": "b", "code": {"text": "x"}}]), "dom-3"),
    (lambda o: o.update(_status={"id": "s"}), "a primitive's companion"),
    (lambda o: o["code"]["coding"][0].update(system="snomed"), "a relative code system"),
    (lambda o: o["valueQuantity"].update(value=decimal.Decimal("1.5")), "a Decimal handed in by code"),
])
def test_each_trap_is_left_to_the_walk_which_reports_it(change: Any, why: str) -> None:
    obs = next(r for r in Generator(4, seed=1).resources() if r["resourceType"] == "Observation")
    assert accepted(obs)
    bad = copy.deepcopy(obs)
    change(bad)
    assert not accepted(bad), why
    assert validate(bad).violations, why


HOSTILE: list[Any] = ["", " ", "  x", "x  y", "a\x1cb", "\u00a0", 1.0, 0, -1, 2**31, True, None, [], {}, [None],
                      {"id": "x"}, "2024-02-29", "2026-02-30", "2026-13-01", "2026-01-01T10:00:00",
                      "Patient/1?x", "#x", "urn:uuid:1", "Practitioner/1", "http://a|1", "a\nb", "1.0e5",
                      "dGVzdA=", "dGVzdA==", "<div>x</div>", "01:02:60", "x" * 70]


@cache
def _pool() -> list[dict[str, Any]]:
    mine = list(Generator(4, seed=2).resources())
    return [r for r in mine + [r for _, r in _corpus()] if accepted(r)]


def _hostile(draw: st.DrawFn, parent: Any, key: Any) -> None:
    action = draw(st.sampled_from(["replace", "delete", "wrap", "unwrap", "twin", "duplicate"]))
    if action == "delete":
        del parent[key]
    elif action == "wrap":
        parent[key] = [parent[key]]
    elif action == "unwrap" and isinstance(parent[key], list) and parent[key]:
        parent[key] = parent[key][0]
    elif action == "twin" and isinstance(parent, dict) and isinstance(key, str):
        twin = draw(st.sampled_from(["valueString", "valueBoolean", "effectivePeriod", "onsetAge",
                                     "medicationReference", "_" + key, key.upper(), "id", "extension"]))
        parent[twin] = copy.deepcopy(draw(st.sampled_from([parent[key], *HOSTILE])))
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))


def mutants() -> st.SearchStrategy[dict[str, Any]]:
    return mutants_of(_pool, _hostile)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_no_mutation_of_an_accepted_resource_is_accepted_where_the_walk_objects(resource: dict[str, Any]) -> None:
    _assert_sound(resource, json.dumps(resource)[:300])


def _slot_of(type_name: str) -> Slot:
    """A slot of this primitive type with no binding or constraint, from some R4 resource."""
    for rtype in sorted(r4().resource_types):
        for slot in node((rtype, "")).slots.values():
            if slot.info.type == type_name and slot.binding is None and not slot.invariants and \
                    slot.kind == "primitive":
                return slot
    raise AssertionError(f"no plain {type_name} element in R4")


def test_every_r4_primitive_has_a_schema() -> None:
    assert set(PRIMITIVES) == {t for t in r4().primitives if t != "xhtml"}


_SPACES = st.sampled_from(list(" \t\r\n\x0b\x0c\x1c\x1f\x85\xa0\u2003\u2028\u3000\ufeff"))
_VALUES = st.one_of(
    st.text(st.one_of(st.characters(codec="utf-8"), _SPACES, st.sampled_from(list("0123456789-:.TZ+=/AZaz|#"))),
            max_size=30),
    st.integers(-(2**33), 2**33), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
    st.from_regex(r"\A[12][0-9]{3}(-[01][0-9](-[0-3][0-9](T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,3})?"
                  r"(Z|[+-][01][0-9]:[0-5][0-9])?)?)?)?\Z"),
)


@pytest.mark.parametrize("type_name", sorted(PRIMITIVES))
@settings(max_examples=300, deadline=None)
@given(value=_VALUES)
def test_a_primitive_value_the_schema_accepts_the_walk_accepts(type_name: str, value: Any) -> None:
    schema = jsonschema_rs.validator_for(PRIMITIVES[type_name])
    if not schema.is_valid(value):
        return
    out = Outcome()
    check_value(value, _slot_of(type_name), "X", "x", None, _Ctx({}, {}, out), ("X",))
    integer_as_float = r4().primitives[type_name]["json"] == "integer" and type(value) is not int
    assert not out.violations or integer_as_float, (type_name, repr(value), out.violations)


def test_the_whitespace_classes_are_pythons() -> None:
    assert {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()} == set(PY_SPACE)
    v = jsonschema_rs.validator_for({"type": "string", "pattern": f"^{NOT_SPACE}+$"})
    for c in map(chr, range(0x3100)):
        assert v.is_valid(c) == (not c.isspace()), repr(c)


def test_the_schema_of_each_resource_type_compiles() -> None:
    for rtype in ("Patient", "Observation", "Bundle", "QuestionnaireResponse", "Parameters"):
        accept.compiled(schema_of(rtype))


RESIDUAL = {accept.HOLDS, accept.INTEGER, accept.DECIMAL, accept.NARRATIVE}
# Applicators whose subschemas jsonschema-rs may leave unevaluated (a branch already decided), evaluate
# only on a condition, or invert: a residual check there would not always run, or would count backwards.
CONDITIONAL = {"not", "anyOf", "oneOf", "if", "then", "else", "dependentSchemas", "contains", "propertyNames",
               "patternProperties", "unevaluatedProperties", "unevaluatedItems"}


def _residual_defs(defs: dict[str, Any]) -> set[str]:
    """The definitions that hold a residual keyword, themselves or through their references."""
    def refs_and_keywords(s: Any) -> tuple[set[str], bool]:
        if isinstance(s, list):
            found = [refs_and_keywords(x) for x in s]
            return set().union(*(r for r, _ in found)), any(k for _, k in found)
        if not isinstance(s, dict):
            return set(), False
        refs = {s["$ref"].removeprefix("#/$defs/")} if isinstance(s.get("$ref"), str) else set()
        here = bool(RESIDUAL & s.keys())
        for k, v in s.items():
            if k not in ("enum", "const", "required", "$ref"):
                more, kw = refs_and_keywords(v)
                refs |= more
                here = here or kw
        return refs, here

    parts = {name: refs_and_keywords(d) for name, d in defs.items()}
    residual = {name for name, (_, kw) in parts.items() if kw}
    grew = True
    while grew:
        more = {name for name, (refs, _) in parts.items() if refs & residual} - residual
        residual |= more
        grew = bool(more)
    return residual


def _walk_for_residual(s: Any, residual: set[str], under: str | None, where: str, seen: set[str]) -> None:
    """Fails where a residual keyword (or a definition holding one) sits under a conditional applicator."""
    if isinstance(s, list):
        for i, x in enumerate(s):
            _walk_for_residual(x, residual, under, f"{where}/{i}", seen)
        return
    if not isinstance(s, dict):
        return
    ref = s["$ref"].removeprefix("#/$defs/") if isinstance(s.get("$ref"), str) else ""
    here = (RESIDUAL & s.keys()) or ref in residual
    assert not (here and under), f"residual check at {where} under {under}"
    seen.update(RESIDUAL & s.keys())
    for k, v in s.items():
        if k in ("enum", "const", "required"):
            continue
        if k in ("properties", "$defs"):
            for name, sub in v.items():
                _walk_for_residual(sub, residual, under, f"{where}/{k}/{name}", seen)
        else:
            _walk_for_residual(v, residual, under or (k if k in CONDITIONAL else None), f"{where}/{k}", seen)


def test_every_residual_check_is_always_run_where_its_value_is() -> None:
    """The checks a schema cannot make (constraints, the narrative's XHTML, 1.0 as an integer) are keywords
    jsonschema-rs calls back into Python; each sits only under properties, items, allOf and references, so
    it runs on every value it is written for, never only on a branch or inverted."""
    seen: set[str] = set()
    for rtype in sorted(r4().resource_types):
        try:
            schema = schema_of(rtype)
        except accept._Unsupported:
            continue
        _walk_for_residual(schema, _residual_defs(schema["$defs"]), None, rtype, seen)
    assert seen == RESIDUAL


def test_a_run_s_warm_up_setting_is_its_own_thread_s() -> None:
    """Runs in threads (the web workspace) each keep the warm-up their export's size sets: a large run in one
    thread neither changes another thread's setting nor leaves the wrong one behind when it ends."""
    import threading

    inside, outside = threading.Event(), threading.Event()
    seen: list[int] = []

    def large_run() -> None:
        with accept.sized_for(accept.LARGE_EXPORT):
            inside.set()
            assert outside.wait(10)
            seen.append(accept._run.warm_up)

    worker = threading.Thread(target=large_run)
    worker.start()
    assert inside.wait(10)
    with accept.sized_for(0):
        seen.append(accept._run.warm_up)
        outside.set()
        worker.join(10)
    assert seen == [accept.WARM_UP, 0] and accept._run.warm_up == accept.WARM_UP
