"""The HTML accreditation report: one self-contained page, for people, rendered from report.json alone.

The first screen says the decision, what it means and what to fix first; then a contents list,
one group per standard (by its title, whatever version strings the packs carry), each rule in
plain words with where it failed and what to do, passing rules folded. Filters by outcome and
level are CSS only (``:has``), so they work offline, under any content policy, without script.
Styles are inlined (colours and type follow the NHS.UK design language, written here, not
copied), nothing is fetched, and it prints to PDF from a browser.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from harness.evidence import EVIDENCE_ID
from harness.reports.safe_text import safe_value
from harness.results import MET_OUTCOMES

TEMPLATES = Path(__file__).with_name("templates")
SHOWN_PER_RULE = 20
OUTCOMES = ("fail", "error", "manual", "waived", "pass", "not-applicable")
LEVELS = ("MUST", "SHOULD", "MAY")
MEANING = {
    "pass": "The system met every requirement this suite treats as blocking, on the data and answers given.",
    "fail": "The system did not meet at least one requirement this suite treats as blocking. It cannot be "
            "assured until each item under 'What to fix first' is met, waived by the assurance team, or, for "
            "a step no data can show, answered.",
    "could-not-evaluate": "The harness could not read enough of the system to judge it. This is not a verdict on "
                          "the supplier: fix the connection or the export and run again.",
}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_INDEX = re.compile(r"\[\d+\]")
ELEMENT_WORDS = {"identifier": "identifier", "birthDate": "date of birth", "telecom": "contact details",
                 "managingOrganization": "managing organisation", "generalPractitioner": "GP practice",
                 "effective": "date and time", "dosage": "dosage", "valueCodeableConcept": "coded value"}


def element_words(path: str | None, resource_type: str | None) -> str:
    """A FHIRPath in words: ``Patient.identifier.where(system='…nhs-number')`` → "NHS number (identifier)"."""
    if not path:
        return ""
    if "nhs-number" in path:
        return "NHS number (identifier)"
    steps = [s for s in re.split(r"\.(?![^(]*\))", path) if s and "(" not in s]
    if resource_type and steps and steps[0] == resource_type:
        steps = steps[1:]
    if not steps:
        return "the resource as a whole"
    words = []
    for step in steps[-2:]:
        name = _INDEX.sub("", step).removesuffix("[x]")
        words.append(ELEMENT_WORDS.get(name) or _CAMEL.sub(" ", name).lower())
    return " → ".join(words) + f" ({_INDEX.sub('', steps[-1])})"


def _where(f: dict[str, Any]) -> str:
    what = " ".join(x for x in (f.get("resource_type"), f.get("resource_id")) if x)
    element = element_words(f.get("path"), f.get("resource_type"))
    return ", ".join(x for x in (what, element) if x) or "the target as a whole"


def report_view(report: dict[str, Any]) -> dict[str, Any]:
    """What a person reads: the decision explained, what to fix first, rules grouped by standard."""
    findings: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        findings.setdefault(f["rule"], []).append({**f, "where": _where(f)})
    groups: dict[str, dict[str, Any]] = {}
    for r in report["rules"]:
        title = r.get("standard_title") or r["standard"]
        g = groups.setdefault(title, {"title": title, "anchor": f"std-{len(groups) + 1}", "versions": [],
                                      "rules": [], "counts": Counter()})
        if r["standard"] not in g["versions"]:
            g["versions"].append(r["standard"])
        total = r["counts"]["failed"] + r["counts"]["errors"]
        shown = findings.get(r["id"], [])
        g["rules"].append({**r, "findings": shown[:SHOWN_PER_RULE], "total": total,
                           "capped": total > len(shown[:SHOWN_PER_RULE]), "met": r["outcome"] in MET_OUTCOMES})
        g["counts"][r["outcome"]] += 1
    ordered = sorted(groups.values(), key=lambda g: (-sum(g["counts"][o] for o in ("fail", "error", "manual")),
                                                     g["title"].lower()))
    blocking = {x["rule"] for x in report["decision"]["reasons"]}
    fix_first = []
    for g in ordered:
        items = [r for r in g["rules"] if r["id"] in blocking]
        if items:
            fix_first.append({"title": g["title"], "anchor": g["anchor"], "rules": items,
                              "findings": sum(r["total"] for r in items)})
    return {"groups": ordered, "fix_first": fix_first, "meaning": MEANING.get(report["decision"]["outcome"], ""),
            "general": [x for x in report["decision"]["reasons"] if x["rule"] == "-"],
            "counts": Counter((r["level"], r["outcome"]) for r in report["rules"]),
            "outcomes": OUTCOMES, "levels": LEVELS, "shown": SHOWN_PER_RULE}


def environment(templates: Path = TEMPLATES) -> Environment:
    """Jinja2 for our pages: autoescaped, text made XML-safe, and the evidence-id filter."""
    env = Environment(loader=FileSystemLoader(templates), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True, finalize=safe_value)
    env.filters["evidence_ids"] = lambda text: EVIDENCE_ID.findall(text or "")
    return env


def render_html(report: dict[str, Any], evidence_base: str = "evidence/") -> bytes:
    """The page; ``evidence_base`` is where evidence exchanges are linked (the run folder's evidence/)."""
    context = {"report": report, "run": report["run"], "decision": report["decision"],
               "view": report_view(report), "evidence_base": evidence_base,
               "signature": report.get("signature"), "certification": report.get("certification")}
    html: str = environment().get_template("report.html.j2").render(**context)
    return html.encode("utf-8")
