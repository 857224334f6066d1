"""The requirement-by-requirement CSV: one row per rule in force, for conformance workbooks."""

from __future__ import annotations

import csv
import io
from typing import Any

from harness.evidence import EVIDENCE_ID

COLUMNS = ["rule", "title", "pack", "standard", "clause", "level", "outcome", "subjects", "failed", "errors",
           "message", "evidence", "remediation"]


def evidence_ids(report: dict[str, Any]) -> dict[str, list[str]]:
    """For each rule, the evidence exchanges its findings cite, in the order they are first cited."""
    evidence: dict[str, list[str]] = {}
    for f in report["findings"]:
        for ex in EVIDENCE_ID.findall(f["location"] or ""):
            ids = evidence.setdefault(f["rule"], [])
            if ex not in ids:
                ids.append(ex)
    return evidence


def render_csv(report: dict[str, Any]) -> bytes:
    evidence = evidence_ids(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report["rules"]:
        c = r["counts"]
        writer.writerow([r["id"], r["title"], r["pack"], r["standard"], r["clause"], r["level"], r["outcome"],
                         c["subjects"], c["failed"], c["errors"], r["message"] or "",
                         ";".join(evidence.get(r["id"], [])), r["remediation"]])
    return buffer.getvalue().encode("utf-8")
