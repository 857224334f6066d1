"""JUnit XML rendered from the canonical report: one test case per rule."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from harness.reports.safe_text import xml_safe


def _clean(element: ET.Element) -> None:
    for el in element.iter():
        if el.text:
            el.text = xml_safe(el.text)
        for key, value in el.attrib.items():
            el.attrib[key] = xml_safe(value)


def render_junit(report: dict[str, Any]) -> bytes:
    summary = report["summary"]["outcomes"]
    run = report["run"]
    suite = ET.Element("testsuite", {
        "name": run["suite"]["id"], "tests": str(report["summary"]["rules"]),
        "failures": str(summary["fail"]), "errors": str(summary["error"] + summary["manual"]),
        "skipped": str(summary["not-applicable"] + summary["waived"]),
        "timestamp": run["started"],
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("suite_version", run["suite"]["version"]), ("as_of", run["as_of"]),
                        ("decision", report["decision"]["outcome"]), ("harness", run["harness"]["version"])):
        ET.SubElement(props, "property", {"name": name, "value": str(value)})
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        by_rule.setdefault(f["rule"], []).append(f)
    for rule in report["rules"]:
        case = ET.SubElement(suite, "testcase", {"classname": rule["pack"], "name": f"{rule['id']}: {rule['title']}"})
        cprops = ET.SubElement(case, "properties")
        for name in ("id", "level", "standard", "clause"):
            ET.SubElement(cprops, "property", {"name": f"rule_{name}" if name == "id" else name,
                                               "value": str(rule[name])})
        text = "\n".join(f"{f['location'] or '-'} {f['resource_type'] or ''}/{f['resource_id'] or ''} "
                         f"{f['path'] or ''}: {f['message']}" for f in by_rule.get(rule["id"], []))
        counts = rule["counts"]
        if counts["failed"] + counts["errors"] > counts["findings_shown"]:
            text += f"\n… {counts['failed'] + counts['errors'] - counts['findings_shown']} more not shown"
        message = rule["message"] or rule["title"]
        outcome = rule["outcome"]
        if outcome == "fail":
            ET.SubElement(case, "failure", {"message": message, "type": rule["level"]}).text = \
                f"{text}\nRemediation: {rule['remediation']}"
        elif outcome in ("error", "manual"):
            ET.SubElement(case, "error", {"message": message, "type": outcome}).text = text
        elif outcome in ("not-applicable", "waived"):
            ET.SubElement(case, "skipped", {"message": f"{outcome}: {message}"})
    _clean(suite)
    ET.indent(suite)
    rendered: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return rendered + b"\n"
