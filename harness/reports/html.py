"""The HTML accreditation report: one self-contained page rendered from report.json alone.

Styles are inlined (colours and type follow the NHS.UK design language, written here, not
copied), nothing is fetched, and it prints to PDF from a browser.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from harness.evidence import EVIDENCE_ID
from harness.reports.safe_text import safe_value
from harness.results import MET_OUTCOMES

TEMPLATES = Path(__file__).with_name("templates")
SHOWN_PER_RULE = 20


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True, finalize=safe_value)
    env.filters["evidence_ids"] = lambda text: EVIDENCE_ID.findall(text or "")
    return env


def render_html(report: dict[str, Any]) -> bytes:
    rules = report["rules"]
    by_standard: dict[str, list[dict[str, Any]]] = {}
    for r in rules:
        by_standard.setdefault(r["standard"], []).append(r)
    findings: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        findings.setdefault(f["rule"], []).append(f)
    counts = Counter((r["level"], r["outcome"]) for r in rules)
    blocking = list(report["decision"]["reasons"])
    context = {
        "report": report, "run": report["run"], "decision": report["decision"], "rules": rules,
        "by_standard": by_standard, "findings": findings, "shown": SHOWN_PER_RULE,
        "levels": ["MUST", "SHOULD", "MAY"],
        "outcomes": ["pass", "fail", "error", "not-applicable", "waived", "manual"],
        "counts": counts, "blocking": blocking, "met": MET_OUTCOMES,
        "failing": [r for r in rules if r["outcome"] not in MET_OUTCOMES],
        "signature": report.get("signature"),
        "certification": report.get("certification"),
    }
    html: str = _environment().get_template("report.html.j2").render(**context)
    return html.encode("utf-8")
