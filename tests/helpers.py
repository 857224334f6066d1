"""Helpers for tests: run a suite (or a single ad-hoc pack) through the real engine."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import orjson

from harness.decision import decide
from harness.plan import build_plan
from harness.results import RunResult
from harness.runner import Assessment, assess
from harness.suites import Catalogue, load_suite
from harness.targets.export import ExportTarget

AS_OF = dt.date(2026, 11, 1)


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


def reference_export(factory: Any, residents: int, seed: int, defects: tuple[str, ...] = ()) -> Path:
    """The reference supplier's export (NDJSON directory ``export``) in a fresh temporary folder."""
    from fixtures.export_generator import Generator
    from fixtures.export_generator import write_ndjson as write_export
    path: Path = factory.mktemp("export") / "export"
    write_export(Generator(residents, seed=seed, defects=defects).resources(), path)
    return path


def run_suite(export: Path, suite: str = "asl-dscr-core", **kw: Any) -> Assessment:
    return assess(suite, ExportTarget([export]), as_of=kw.pop("as_of", AS_OF), **kw)


def one_pack_run(tmp_path: Path, rules_yaml: str, resources: list[dict[str, Any]],
                 terminology: Any = None, as_of: dt.date = AS_OF) -> RunResult:
    """Run an ad-hoc pack (rules given as YAML) over resources, through the real engine."""
    packs = tmp_path / "packs"
    packs.mkdir(exist_ok=True)
    (packs / "test.yaml").write_text(
        "pack: test.pack\ntitle: Test\nversion: 1.0.0\n"
        "standards: [{id: T, title: Test standard, version: '1'}]\n"
        "rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  "), encoding="utf-8")
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text("suite: test\ntitle: Test\nversion: 1.0.0\npacks: [{pack: test.pack}]\n"
                          "policy: {blocking_levels: [MUST]}\n", encoding="utf-8")
    catalogue = Catalogue([packs])
    suite = load_suite(suite_path)
    plan = build_plan(suite, catalogue, as_of, "export", terminology=terminology)
    export = write_ndjson(tmp_path / "export" / "data.ndjson", resources)
    from harness.engine import run_plan
    result = run_plan(plan, ExportTarget([export]))
    decide(result.rules, suite.policy)
    return result


RULE = """\
- id: {id}
  title: test rule
  level: MUST
  standard: T
  clause: c
  applies_to: [export]
  effective_from: 2020-01-01
  resource: {resource}
  remediation: fix it
"""


def rule_yaml(rule_id: str = "T-RULE-001", resource: str = "Patient", **fields: str) -> str:
    text = RULE.format(id=rule_id, resource=resource)
    for key, value in fields.items():
        text += f"  {key}: {value}\n"
    return text


def personal_values(app: Any) -> set[str]:
    """Every personal value a reference server (``ReferenceApi``) holds: what no redacted file may contain."""
    values: set[str] = set()
    for rtype in ("Patient", "RelatedPerson", "Practitioner"):
        for r in app.store.of_type(rtype):
            values.update(str(i["value"]) for i in r.get("identifier", []) if "value" in i)
            for n in r.get("name", []):
                values.update([n.get("family", ""), *n.get("given", [])])
            for a in r.get("address", []):
                values.update([*a.get("line", []), a.get("postalCode", ""), a.get("city", "")])
            values.update(str(t["value"]) for t in r.get("telecom", []) if "value" in t)
            values.add(r.get("birthDate", ""))
    return {v for v in values if len(v) >= 3}
