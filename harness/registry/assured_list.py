"""The Assured Solutions List: what is published, and what the roadmap will change.

A solution is listed when its latest decision passed, has not expired, and its certification
report carries a signature that verifies with the assurance team's public key. The list names
the SHA-256 of each signed report, and ``publish`` writes those reports beside it, so anyone
can check an entry offline.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from harness.errors import ConfigurationError
from harness.paths import assured_list_schema_path
from harness.registry.models import Decision, Round, Solution, Supplier
from harness.registry.service import Registry, policy_of, waiver_in_force
from harness.reports.signing import sha256_hex, verify_document
from harness.results import MET_OUTCOMES
from harness.schemas import instance_problems
from harness.suites import Catalogue, in_force

LIST_SCHEMA = "care-assure/assured-list/v1"


@dataclass
class Listing:
    entries: list[dict[str, Any]]
    reports: dict[str, str]  # sha256 -> signed report text
    left_out: list[str] = field(default_factory=list)  # why each passed decision is not listed
    audit_head: str = ""


def _latest_decisions(registry: Registry) -> list[tuple[Decision, Solution, Supplier, Round]]:
    with registry.factory() as s:
        rows = s.execute(select(Decision, Solution, Supplier, Round)
                         .join(Solution, Decision.solution_id == Solution.id)
                         .join(Supplier, Solution.supplier_id == Supplier.id)
                         .join(Round, Decision.round_id == Round.id)
                         .order_by(Decision.id)).all()
    latest: dict[int, tuple[Decision, Solution, Supplier, Round]] = {}
    for d, sol, sup, rnd in rows:
        latest[sol.id] = (d, sol, sup, rnd)  # the most recent decision supersedes earlier ones
    return list(latest.values())


def _lapsed(cert: dict[str, Any], waivers: dict[int, Any], round_id: str, as_of: dt.date) -> str | None:
    """Why a decision that relied on waivers no longer stands (one revoked or expired), or None."""
    for w in cert.get("waivers", []):
        row = waivers.get(w.get("id"))
        what = f"waiver {w.get('id')} for {w.get('rule')}"
        if row is None:
            return f"{what} is not in the registry: the decision relied on it"
        if row.revoked_at is not None:
            return f"{what} was revoked on {str(row.revoked_at)[:10]}: the decision relied on it"
        if not waiver_in_force(row, round_id, as_of):
            return f"{what} expired on {row.expires}: the decision relied on it"
    return None


def build_listing(registry: Registry, public_key: Ed25519PublicKey, as_of: dt.date) -> Listing:
    """The solutions listed on ``as_of``.

    A decision that passed only with waivers stands only while every one of them does: it
    lapses when one is revoked or expires, and its listed expiry is the earliest of its own
    and its waivers'.
    """
    listing = Listing([], {})
    waivers = {w.id: w for w, _handle in registry.waivers()}
    for d, sol, sup, rnd in _latest_decisions(registry):
        name = f"{sup.handle} {sol.name} {sol.version} (decision {d.id})"
        if d.outcome != "pass":
            continue
        if d.expires < as_of:
            listing.left_out.append(f"{name}: expired on {d.expires}")
            continue
        if sha256_hex(d.report.encode()) != d.report_sha256:
            listing.left_out.append(f"{name}: stored report does not match its hash")
            continue
        report = orjson.loads(d.report)
        problems = verify_document(report, public_key)
        if problems:
            listing.left_out.append(f"{name}: signature does not verify with the team key: {problems[0]}")
            continue
        cert = report["certification"]
        lapsed = _lapsed(cert, waivers, rnd.id, as_of)
        if lapsed:
            listing.left_out.append(f"{name}: {lapsed}")
            continue
        expires = min([d.expires, *(dt.date.fromisoformat(w["expires"]) for w in cert["waivers"])])
        listing.reports[d.report_sha256] = d.report
        listing.entries.append({
            "supplier": sup.handle, "supplier_name": sup.name, "solution": sol.name, "version": sol.version,
            "capabilities": sorted(sol.capabilities), "care_settings": sorted(sol.care_settings),
            "suite": {"id": rnd.suite, "version": rnd.suite_version}, "round": rnd.id,
            "assured_on": d.decided_on.isoformat(), "expires": expires.isoformat(),
            "waivers": [{"rule": w["rule"], "expires": w["expires"], "justification": w["justification"]}
                        for w in cert["waivers"]],
            "report_sha256": d.report_sha256, "key_id": report["signature"]["key_id"],
        })
    listing.entries.sort(key=lambda e: (e["supplier"], e["solution"], e["version"]))
    listing.audit_head = registry.verify_audit().head
    return listing


def publish(registry: Registry, public_key: Ed25519PublicKey, out: Path, as_of: dt.date) -> Listing:
    chain = registry.verify_audit()
    if chain.problem:
        raise ConfigurationError(f"the audit log does not verify, so nothing is published: {chain.problem}")
    listing = build_listing(registry, public_key, as_of)
    doc = {"schema": LIST_SCHEMA, "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "as_of": as_of.isoformat(), "audit_head": listing.audit_head, "entries": listing.entries}
    problems = instance_problems(doc, assured_list_schema_path(), "assured-list.json")
    if problems:  # our own output must match our own published schema
        raise ConfigurationError(problems)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reports").mkdir(exist_ok=True)
    for sha, text in listing.reports.items():
        (out / "reports" / f"{sha}.json").write_text(text, encoding="utf-8")
    (out / "assured-list.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
                                            + b"\n")
    (out / "assured-list.csv").write_text(_csv(listing.entries), encoding="utf-8")
    (out / "index.html").write_text(_html(doc), encoding="utf-8")
    return listing


def _csv(entries: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["supplier", "supplier_name", "solution", "version", "capabilities", "care_settings", "suite",
                     "suite_version", "round", "assured_on", "expires", "waivers", "report_sha256"])
    for e in entries:
        writer.writerow([e["supplier"], e["supplier_name"], e["solution"], e["version"], "; ".join(e["capabilities"]),
                         "; ".join(e["care_settings"]), e["suite"]["id"], e["suite"]["version"], e["round"],
                         e["assured_on"], e["expires"],
                         "; ".join(f"{w['rule']} until {w['expires']}" for w in e["waivers"]), e["report_sha256"]])
    return buf.getvalue()


def _html(doc: dict[str, Any]) -> str:
    env = Environment(loader=PackageLoader("harness.reports", "templates"), autoescape=select_autoescape())
    return env.get_template("assured-list.html.j2").render(doc=doc)


@dataclass(frozen=True, slots=True)
class Forecast:
    supplier: str
    solution: str
    expires: str
    failing: list[dict[str, str]]  # rule, level, effective_from, outcome or "not evaluated"

    @property
    def would_fail(self) -> bool:
        return bool(self.failing)


def forecast(registry: Registry, public_key: Ed25519PublicKey, on: dt.date,
             catalogue: Catalogue | None = None) -> list[Forecast]:
    """For each listed solution: the blocking rules in force on ``on`` that its evidence does not meet.

    Rules the signed report evaluated ahead of time (its forecast section) are judged on their
    outcome; rules of the suite in force on that date that the report never evaluated count as
    failing ("not evaluated"), because a missing result is never a pass.
    """
    today = dt.date.today()
    listing = build_listing(registry, public_key, min(today, on))
    all_waivers = registry.waivers()
    out = []
    for entry in listing.entries:
        report = orjson.loads(listing.reports[entry["report_sha256"]])
        rnd = registry.round(entry["round"])
        policy = policy_of(rnd)
        blocking = {lvl.value for lvl in policy.blocking_levels}
        waived = {w.rule_id for w, handle in all_waivers
                  if handle in (None, entry["supplier"]) and waiver_in_force(w, rnd.id, on)}
        evaluated = {r["id"]: r for r in report["rules"]}
        failing = []
        for r in report.get("forecast", {}).get("rules", []):
            evaluated[r["id"]] = r
            if (r["effective_from"] <= on.isoformat() and r["level"] in blocking
                    and r["outcome"] not in MET_OUTCOMES and r["id"] not in waived):
                failing.append({"rule": r["id"], "level": r["level"], "effective_from": r["effective_from"],
                                "outcome": r["outcome"], "title": r["title"]})
        if catalogue is not None:
            target_kind = report["run"]["target"]["kind"]
            suite = catalogue.suite(rnd.suite_source)
            for rule in in_force(catalogue.rules_for(suite), on, target_kind):
                if rule.id not in evaluated and rule.level.value in blocking and rule.id not in waived:
                    failing.append({"rule": rule.id, "level": rule.level.value,
                                    "effective_from": rule.effective_from.isoformat(), "outcome": "not evaluated",
                                    "title": rule.title})
        if on > dt.date.fromisoformat(entry["expires"]):
            failing.append({"rule": "-", "level": "MUST", "effective_from": entry["expires"], "outcome": "expired",
                            "title": "the assurance will have expired; a new round is needed"})
        out.append(Forecast(entry["supplier"], f"{entry['solution']} {entry['version']}", entry["expires"],
                            sorted(failing, key=lambda f: (f["effective_from"], f["rule"]))))
    return out
