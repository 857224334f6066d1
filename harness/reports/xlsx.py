"""The SCAL-style evidence workbook (openpyxl): the sheet an assessor files with a round.

Sheet "Requirements" has one row per rule in force: standard, clause, level, outcome, counts,
evidence ids, remediation and the attestation or witness answer; "Findings" the findings the
report keeps; "Run" what was tested, when, with what, and the decision. Every cell from a report
is written as text, never as a formula (a finding's value starting with "=" stays text), and
every time the file records (document properties, zip entries) is the run's, so the same report
gives the same workbook.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from harness.reports.csv_report import evidence_ids
from harness.reports.html import element_words
from harness.reports.safe_text import xml_safe

REQUIREMENT_COLUMNS = [("Standard", 34), ("Rule", 20), ("Requirement", 44), ("Clause", 50), ("Level", 9),
                       ("Outcome", 14), ("Subjects", 10), ("Failed", 9), ("Errors", 9), ("Findings shown", 10),
                       ("Evidence ids", 20), ("Answer (attestation or witness)", 50), ("Result", 50),
                       ("Remediation", 60), ("Standard as cited", 30), ("Pack", 22)]
FINDING_COLUMNS = [("Rule", 20), ("Resource", 34), ("Element", 34), ("Where (file:line or request)", 44),
                   ("Finding", 70), ("FHIRPath", 40), ("Kind", 9)]
HEADER_FILL = PatternFill("solid", fgColor="005EB8")
OUTCOME_FILL = {"pass": "CCE5D8", "fail": "F7D4D1", "error": "F7D4D1", "manual": "FFE8CC", "waived": "DBE0E3",
                "not-applicable": "F0F4F5"}


def _text(value: Any) -> Any:
    return xml_safe(value) if isinstance(value, str) else value


def _sheet(ws: Worksheet, columns: list[tuple[str, int]], rows: list[list[Any]]) -> None:
    ws.append([name for name, _ in columns])
    for i, (_, width) in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font, cell.fill = Font(bold=True, color="FFFFFF"), HEADER_FILL
        ws.column_dimensions[get_column_letter(i)].width = width
    for row in rows:
        ws.append([_text(v) for v in row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, even when it starts with "=" (no formula from a report's content)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"


def _answer(rule: dict[str, Any], witnessed: dict[str, dict[str, Any]]) -> str:
    w = witnessed.get(rule["id"])
    if w:
        return f"witnessed as {w['answer']} by {w['by']} on {w['at'][:10]}" + (f": {w['note']}" if w["note"] else "")
    message = rule.get("message") or ""
    return message if message.startswith(("attested ", "awaiting an attestation")) else ""


def render_xlsx(report: dict[str, Any]) -> bytes:
    evidence = evidence_ids(report)
    cert = report.get("certification") or {}
    witnessed = {w["rule"]: w for w in cert.get("witnessed", [])}
    wb = Workbook()
    requirements = wb.active
    assert requirements is not None
    requirements.title = "Requirements"
    rows = []
    for r in report["rules"]:
        c = r["counts"]
        rows.append([r.get("standard_title") or r["standard"], r["id"], r["title"], r["clause"], r["level"],
                     r["outcome"], c["subjects"], c["failed"], c["errors"], c["findings_shown"],
                     "; ".join(evidence.get(r["id"], [])), _answer(r, witnessed), r.get("message") or "",
                     r["remediation"], r["standard"], r["pack"]])
    _sheet(requirements, REQUIREMENT_COLUMNS, rows)
    for row in requirements.iter_rows(min_row=2, min_col=6, max_col=6):
        fill = OUTCOME_FILL.get(str(row[0].value))
        if fill:
            row[0].fill = PatternFill("solid", fgColor=fill)
    _sheet(wb.create_sheet("Findings"), FINDING_COLUMNS, [
        [f["rule"], " ".join(x for x in (f.get("resource_type"), f.get("resource_id")) if x),
         element_words(f.get("path"), f.get("resource_type")), f.get("location") or "", f["message"],
         f.get("path") or "", f["kind"]] for f in report["findings"]])
    run = report["run"]
    facts = [["Suite", f"{run['suite']['id']} {run['suite']['version']} — {run['suite'].get('title', '')}"],
             ["Rules in force on", run["as_of"]], ["Run", run["id"]], ["Started", run["started"]],
             ["Finished", run["finished"]], ["Target", run["target"]["kind"]],
             ["Harness", f"{run['harness']['name']} {run['harness']['version']}"],
             ["Assessment", f"{run['assessment']['kind']}: {run['assessment']['statement']}"],
             ["Decision", report["decision"]["outcome"]],
             ["Blocking", "; ".join(x["rule"] for x in report["decision"]["reasons"])],
             ["Signed", f"{report['signature']['signer']} (key {report['signature']['key_id']})"
              if report.get("signature") else "not signed"]]
    if cert:
        facts += [["Round", cert["round"]], ["Supplier", cert["supplier"]], ["Solution", cert["solution"]],
                  ["Assessor", cert["assessor"]], ["Decided", cert["decided"]], ["Valid until", cert["expires"]],
                  ["Waivers", "; ".join(f"{w['rule']} until {w['expires']}" for w in cert["waivers"])]]
    facts += [[f"Pack {p['id']}", f"{p['version']} sha256 {p['sha256']}"] for p in run["packs"]]
    facts += [[f"Input {i['path']}", f"{i['size']} bytes sha256 {i['sha256']}"] for i in run["target"]["inputs"]]
    _sheet(wb.create_sheet("Run"), [("What", 34), ("Value", 100)], facts)
    when = dt.datetime.fromisoformat(run["finished"]).replace(tzinfo=None, microsecond=0)
    wb.properties.created = wb.properties.modified = when
    wb.properties.creator = wb.properties.lastModifiedBy = "care-assure"
    wb.properties.title = f"{run['suite']['id']} requirements"
    buffer = io.BytesIO()
    wb.save(buffer)
    return _stable(buffer.getvalue(), when)


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _stable(workbook: bytes, when: dt.datetime) -> bytes:
    """The saved workbook with the run's time wherever openpyxl and zipfile wrote the time of saving."""
    out = io.BytesIO()
    stamp = when.isoformat(timespec="seconds").encode() + b"Z"
    with zipfile.ZipFile(io.BytesIO(workbook)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "docProps/core.xml":
                data = _MODIFIED.sub(lambda m: m[1] + stamp + m[2], data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6]), data,
                         compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
