"""Minimal conforming R4 resources built from the compiled definitions, and defects injected into them.

``minimal(type)`` fills exactly what the R4 table requires (required elements, one type of each
required choice element, codes from required bindings, references to a permitted target type),
so a resource is as small as the definitions allow. The defect builders each break one thing the
compiler supports — a binding strength, a cardinality, a constraint key — so a test can show
that exactly that rule fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from harness.fhir.model import ElementInfo, r4
from harness.fhir.validator import binding

NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>'}
PRIMITIVE_VALUES: dict[str, Any] = {
    "string": "x", "code": "x", "uri": "http://example.org/x", "url": "http://example.org/x",
    "canonical": "http://example.org/x", "dateTime": "2024-01-01", "date": "2024-01-01",
    "instant": "2024-01-01T00:00:00Z", "time": "10:00:00", "boolean": True, "integer": 1, "positiveInt": 1,
    "unsignedInt": 0, "decimal": 1.5, "id": "a1", "markdown": "x", "base64Binary": "AAAA",
    "oid": "urn:oid:1.2.3", "uuid": "urn:uuid:3f1a8c2e-1b7d-4c55-9a0e-2f6b1d9c0a11",
}
MAX_DEPTH = 6


def _code(info: ElementInfo) -> tuple[str | None, str] | None:
    """A (system, code) from the element's required binding, if it has one with codes."""
    bind = info.extras.get("bind")
    if not bind or bind[0] != "required":
        return None
    codes = binding(*bind).codes
    if not codes:
        return None
    system = sorted(codes)[0]
    return (system or None), sorted(codes[system])[0]


def value_of(info: ElementInfo, depth: int = 0) -> Any:
    """A valid value for the element (codes from its required binding, a permitted reference target)."""
    model = r4()
    t = info.type
    if t in model.primitives and t != "xhtml":
        coded = _code(info)
        return coded[1] if coded else PRIMITIVE_VALUES[t]
    if t == "xhtml":
        return NARRATIVE["div"]
    if t == "Reference":
        targets = [x for x in info.extras.get("targets", []) if x in model.resource_types] or ["Patient"]
        return {"reference": f"{targets[0]}/t1"}
    if t in ("CodeableConcept", "Coding"):
        coded = _code(info)
        coding = {"system": coded[0] or "http://example.org/cs", "code": coded[1]} if coded else {
            "system": "http://example.org/cs", "code": "x"}
        return {"coding": [coding]} if t == "CodeableConcept" else coding
    if t in ("Resource", "DomainResource"):
        return {"resourceType": "Basic", "code": {"text": "x"}}
    return _object(info.state, depth + 1)


def _object(state: tuple[str, str], depth: int) -> dict[str, Any]:
    model = r4()
    children = model.children(state)
    out: dict[str, Any] = {}
    if depth > MAX_DEPTH:
        return out
    for name, info in children.items():
        if info.min > 0 and not info.choice:
            value = value_of(info, depth)
            out[name] = [value] if info.many else value
    chosen: set[str] = set()
    for name, info in children.items():
        base = info.choice.rsplit(".", 1)[-1] if info.choice else None
        if base and info.extras.get("cmin") and base not in chosen:
            out[name] = value_of(info, depth)
            chosen.add(base)
    if not out:  # an element needs a value or children (ele-1): give its first plain primitive
        for name, info in children.items():
            if name not in ("id", "extension", "modifierExtension") and info.type in PRIMITIVE_VALUES:
                value = value_of(info, depth)
                out[name] = [value] if info.many else value
                break
    return out


def minimal(resource_type: str) -> dict[str, Any]:
    """The smallest resource of the type that the R4 definitions accept (with a narrative, dom-6)."""
    resource = {"resourceType": resource_type, "id": "m1", **_object((resource_type, ""), 0)}
    if "text" in r4().children((resource_type, "")):
        resource["text"] = copy.deepcopy(NARRATIVE)
    return resource


def required_codes(resource_type: str) -> list[str]:
    """Top-level code elements with a required binding that has codes (for binding defects)."""
    children = r4().children((resource_type, ""))
    return [n for n, i in children.items() if i.type == "code" and not i.many and _code(i) is not None]


def required_elements(resource_type: str) -> list[str]:
    children = r4().children((resource_type, ""))
    return [n for n, i in children.items() if i.min > 0 and not i.choice]


def required_choices(resource_type: str) -> list[tuple[str, str]]:
    """(choice base, the variant ``minimal`` gives) of each required choice element."""
    resource = minimal(resource_type)
    children = r4().children((resource_type, ""))
    return [(i.choice.rsplit(".", 1)[-1], n) for n, i in children.items()
            if i.choice and i.extras.get("cmin") and n in resource]


# What some R4 constraints ask beyond the cardinalities, keyed by constraint: a patch per key.
# ``minimal`` plus every patch of its type is valid; leaving one patch out breaks exactly its key.
# cpb-2 and tcp-2 also hold when cpb-15's and tcp-4's software is there (REDUNDANT: never alone).
CONSTRAINT_FILLS: dict[str, tuple[str, list[tuple[tuple[Any, ...], Any]]]] = {
    "ait-1": ("AllergyIntolerance", [(("clinicalStatus",), {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]})]),
    "app-1": ("Appointment", [(("participant", 0, "actor"), {"reference": "Patient/t1"})]),
    "app-3": ("Appointment", [(("start",), "2024-01-01T10:00:00Z"), (("end",), "2024-01-01T11:00:00Z")]),
    "apr-1": ("AppointmentResponse", [(("actor",), {"reference": "Patient/t1"})]),
    "cpb-1": ("CapabilityStatement", [(("rest",), [{"mode": "server"}])]),
    "cpb-2": ("CapabilityStatement", [(("description",), "x")]),
    "cpb-15": ("CapabilityStatement", [(("software",), {"name": "x"})]),
    "ppc-1": ("Consent", [(("policyRule",), {"text": "x"})]),
    "trd-3": ("EventDefinition", [(("trigger", 0, "type"), "named-event"), (("trigger", 0, "name"), "x")]),
    "imr-1": ("ImmunizationRecommendation", [(("recommendation", 0, "vaccineCode"), [{"text": "x"}])]),
    "ipn-1": ("InsurancePlan", [(("name",), "x")]),
    "lnk-1": ("Linkage", [(("item", 1), {"type": "source", "resource": {"reference": "Patient/t2"}})]),
    "org-1": ("Organization", [(("name",), "x")]),
    "sdf-6": ("StructureDefinition", [(("type",), "Patient"),
                                      (("differential",), {"element": [{"id": "Patient", "path": "Patient"}]})]),
    "tcp-2": ("TerminologyCapabilities", [(("description",), "x")]),
    "tcp-4": ("TerminologyCapabilities", [(("software",), {"name": "x"})]),
}
REDUNDANT = frozenset({"cpb-2", "tcp-2"})


def json_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (keys and indexes from the top), the top itself left out."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += json_paths(v, (*prefix, i))
    return out


def parent_at(resource: Any, path: tuple[Any, ...]) -> Any:
    """The object or array holding the place ``path`` names (its last step is the key or index in it)."""
    node: Any = resource
    for step in path[:-1]:
        node = node[step]
    return node


Mutation = Callable[[st.DrawFn, Any, Any], None]  # (draw, the container of a place, its key or index)


def mutants_of(pool: Callable[[], list[dict[str, Any]]], mutate: Mutation,
               rounds: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """Resources of the pool (a copy), changed 1 to ``rounds`` times by ``mutate``, each time at a place
    drawn from the resource's JSON as it is then (the pool is read at the first draw)."""
    @st.composite
    def mutants(draw: st.DrawFn) -> dict[str, Any]:
        resource = copy.deepcopy(draw(st.sampled_from(pool())))
        for _ in range(draw(st.integers(1, rounds))):
            paths = json_paths(resource)
            if not paths:
                break
            path = draw(st.sampled_from(paths))
            mutate(draw, parent_at(resource, path), path[-1])
        return resource
    return mutants()


def _set(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node = parent_at(resource, path)
    last = path[-1]
    if isinstance(node, list) and last == len(node):
        node.append(value)
    else:
        node[last] = value


def conforming(resource_type: str, leave_out: str | None = None) -> dict[str, Any]:
    """``minimal`` with the constraint patches of its type (all, or all but ``leave_out``)."""
    resource = minimal(resource_type)
    for key, (rtype, patches) in CONSTRAINT_FILLS.items():
        if rtype == resource_type and key != leave_out:
            for path, value in patches:
                _set(resource, path, copy.deepcopy(value))
    return resource
