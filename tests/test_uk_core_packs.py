"""The generated UK Core packs: reproducible, quiet on the official examples, and each rule can fail.

For every generated rule the test builds a conforming resource (one that meets every
constraint of its profile) and a violating one (the same, with that rule's constraint broken)
from the rule's own parameters, and runs both through the real engine: the conforming one
gives no finding, the violating one fails that rule and no other.
"""

from __future__ import annotations

import copy
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.engine import run_plan
from harness.packs.loader import load_pack
from harness.packs.model import Rule
from harness.plan import build_plan
from harness.runner import assess
from harness.suites import Catalogue, load_suite
from harness.targets.export import ExportTarget
from tests.helpers import write_ndjson

ROOT = Path(__file__).resolve().parents[1]
PACKS = {"uk-core.stu2": ROOT / "standards" / "uk-core" / "stu2.yaml",
         "uk-core.draft": ROOT / "standards" / "uk-core" / "draft.yaml"}
AS_OF = dt.date(2026, 11, 1)


def _rules(pack: str) -> list[Rule]:
    return list(load_pack(PACKS[pack]).rules)


def test_committed_packs_match_a_regeneration(tmp_path: Path, data_dir: Path) -> None:
    """`make packs` is the only way these files change: a hand edit or a generator change shows here."""
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run(["make", "-s", "packs", f"SHARED={data_dir.parent}", f"BIN={bin_dir}", "STAMP=",
                           f"PACKS_OUT={tmp_path}"], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in PACKS.values():
        regenerated = (tmp_path / path.name).read_text(encoding="utf-8")
        assert regenerated == path.read_text(encoding="utf-8"), f"{path} differs from a regeneration: run make packs"


def test_every_rule_cites_profile_version_and_element() -> None:
    for pack in PACKS:
        for rule in _rules(pack):
            check = rule.check
            assert "|" in check["profile"], rule.id  # canonical|version
            version = check["profile"].split("|")[1]
            assert version and version in rule.clause, rule.id
            assert rule.resources[0] in rule.clause, rule.id
            if pack == "uk-core.draft":
                assert rule.level.value == "SHOULD" and "draft" in (rule.note or ""), rule.id


def test_official_examples_give_no_must_finding_except_the_known_defects(tmp_path: Path, data_dir: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("suite: examples\ntitle: examples\nversion: 1.0.0\npacks: [{pack: uk-core.stu2}, "
                     "{pack: identifiers.nhs-number}, {pack: identifiers.ods}, {pack: identifiers.snomed}]\n"
                     "policy: {blocking_levels: [MUST]}\n", encoding="utf-8")
    result = assess(str(suite), ExportTarget([data_dir / "ukcore-stu2" / "examples"]), as_of=AS_OF).result
    must = {(f.rule, Path(f.location.file or "").name) for r in result.rules if r.level.value == "MUST"
            for f in r.findings if f.location and not f.error}
    assert must == {
        ("NHSNO-CHK-001", "UKCore-Patient-BabyPatient-Example.xml"),  # check digit should be 6
        ("DMD-SYS-001", "UKCore-Medication-Sn-Extension-Amoxicillin-Example.xml"),  # trailing slash
    }
    unreadable = result.rule("HARNESS-READ-001")
    assert unreadable.errors == 9  # the examples written without the FHIR namespace (see the data README)
    # The profile rules did look at the examples: Patients, Organizations, Medications...
    subjects = {r.rule: r.subjects for r in result.rules}
    assert subjects["UKC-PATIENT-MS"] >= 10 and subjects["UKC-MEDICATION-CODE-CARD"] >= 3


# -- conforming and violating instances from the rules' own parameters --------------------------------------

BAD_CODING = {"system": "http://example.org/not-in-the-value-set", "code": "zzz"}


def _leaf(rules: list[Rule], path: list[dict[str, Any]]) -> tuple[str, Any]:
    """A non-empty value for the element at ``path`` (a code from its required binding, if it has one)."""
    name = path[-1]["name"]
    for rule in rules:
        c = rule.check
        if c["constraint"] == "binding" and c["path"] == path:
            coding = {"system": c["codes"][0][0], "code": c["codes"][0][1]} if c.get("codes") else \
                {"system": c["code_system"], "code": "en"}
            concept = {"coding": [coding]}
            return (name.replace("[x]", "CodeableConcept") if name.endswith("[x]") else name), concept
    if name.endswith("[x]"):
        return name.replace("[x]", "String"), "recorded"
    return name, {"text": "recorded"} if name in ("code", "substitution") else "recorded"


def _node(rules: list[Rule], prefix: list[dict[str, Any]]) -> dict[str, Any]:
    """An element at ``prefix`` (slice fields set) with every child that a min rule requires."""
    node: dict[str, Any] = dict(prefix[-1].get("slice", {})) if prefix else {}
    for rule in rules:
        c = rule.check
        if c["constraint"] != "cardinality" or not c["min"] or c["path"][:-1] != prefix:
            continue
        child = c["path"][-1]
        if child.get("slice") or any(r.check["constraint"] == "cardinality" and r.check["min"]
                                     and r.check["path"][:-1] == c["path"] for r in rules):
            key, value = child["name"], _node(rules, c["path"])
            node.setdefault(key, []).append(value)
        else:
            key, value = _leaf(rules, c["path"])
            node[key] = value
    return node


def _put(resource: dict[str, Any], rules: list[Rule], path: list[dict[str, Any]], last: Any,
         copies: int = 1) -> None:
    """Create the chain of elements down to ``path`` (each valid), and put ``last`` there ``copies`` times."""
    node = resource
    for i, step in enumerate(path[:-1]):
        child = _node(rules, path[: i + 1])
        node.setdefault(step["name"], []).append(child)
        node = child
    name = path[-1]["name"]
    if name.endswith("[x]"):
        name = name.replace("[x]", "CodeableConcept" if isinstance(last, dict) and "coding" in last else "String")
    if copies == 1 and not path[-1].get("slice") and name not in ("identifier", "extension", "name", "telecom",
                                                                   "address", "communication"):
        node[name] = last
    else:
        node.setdefault(name, []).extend(copy.deepcopy(last) for _ in range(copies))


def _conforming(rules: list[Rule], resource_type: str) -> dict[str, Any]:
    return {"resourceType": resource_type, "id": "conforming", **_node(rules, [])}


def _violating(rule: Rule, rules: list[Rule]) -> dict[str, Any]:
    c = rule.check
    resource = _conforming(rules, rule.resources[0])
    resource["id"] = "violating"
    if c["constraint"] == "cardinality" and c["min"] and len(c["path"]) == 1:
        resource.pop(c["path"][0]["name"], None)
    elif c["constraint"] == "cardinality" and c["min"]:
        parent = c["path"][:-1]
        _put(resource, rules, parent, {k: v for k, v in _node(rules, parent).items()
                                       if k != c["path"][-1]["name"] and not k.startswith(
                                           c["path"][-1]["name"].replace("[x]", ""))})
    elif c["constraint"] == "cardinality":
        _put(resource, rules, c["path"], _node(rules, c["path"]), copies=int(c["max"]) + 1)
    elif c["constraint"] == "binding":
        _put(resource, rules, c["path"], {"coding": [BAD_CODING]})
    elif c["constraint"] == "system":
        _put(resource, rules, c["path"], {"system": c["system"] + "/", "value": "X1"})
    elif c["constraint"] == "must-support":
        _put(resource, rules, c["elements"][-1]["path"], "N/A")
    return resource


def _failing(pack: str, resource: dict[str, Any], tmp_path: Path) -> set[str]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"suite: one\ntitle: one\nversion: 1.0.0\npacks: [{{pack: {pack}}}]\n"
                     "policy: {blocking_levels: [MUST, SHOULD]}\n", encoding="utf-8")
    export = write_ndjson(tmp_path / "export" / "data.ndjson", [resource])
    catalogue = Catalogue.default(())
    plan = build_plan(load_suite(suite), catalogue, AS_OF, "export")
    result = run_plan(plan, ExportTarget([export]))
    assert result.rule("HARNESS-READ-001").outcome.value == "pass"
    return {r.rule for r in result.rules if r.outcome.value not in ("pass", "not-applicable")}


CASES = [(pack, rule.id) for pack in PACKS for rule in _rules(pack)]


@pytest.mark.parametrize(("pack", "rule_id"), CASES, ids=[rid for _, rid in CASES])
def test_each_generated_rule_fails_alone_on_its_violation(pack: str, rule_id: str, tmp_path: Path) -> None:
    rules = _rules(pack)
    rule = next(r for r in rules if r.id == rule_id)
    same_type = [r for r in rules if r.resources == rule.resources]
    conforming = _conforming(same_type, rule.resources[0])
    assert _failing(pack, conforming, tmp_path) == set(), conforming
    violating = _violating(rule, same_type)
    assert _failing(pack, violating, tmp_path) == {rule_id}, violating


def test_must_support_takes_a_code_for_a_code_and_a_placeholder_for_a_placeholder(tmp_path: Path) -> None:
    """'unknown' is an AdministrativeGender code, not a placeholder; as a family name it is one."""
    rule = next(r for r in _rules("uk-core.stu2") if r.id == "UKC-PATIENT-MS")
    from harness.checks.profile import _must_support

    check = _must_support(rule.check)
    coded = {"resourceType": "Patient", "gender": "unknown", "name": [{"family": "Okafor"}]}
    placeholder = {"resourceType": "Patient", "gender": "female", "name": [{"family": "unknown"}]}
    assert list(check(coded, None)) == []
    assert [i.path for i in check(placeholder, None)] == ["Patient.name", "Patient.name.family"]  # both empty


def test_asl_dscr_core_carries_the_uk_core_rules_at_their_levels() -> None:
    catalogue = Catalogue.default(())
    in_suite = {r.id: r.level for r in catalogue.rules_for(catalogue.suite("asl-dscr-core"))}
    generated = _rules("uk-core.stu2")
    assert generated and all(in_suite.get(r.id) == r.level for r in generated)
