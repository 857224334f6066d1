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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from harness.errors import ConfigurationError
from harness.paths import assured_list_schema_path
from harness.registry.models import Decision, Solution, Supplier
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


IDENTITY = ("supplier", "solution_name", "solution_version")  # what a certification is about, as it signs it


@dataclass(frozen=True, slots=True)
class _Decided:
    """One decision: what its signed certification says when that verifies, else None."""

    row: Decision
    identity: tuple[str, str, str]
    report: dict[str, Any] | None
    problem: str  # why the signed content is not usable ("" when it is)


def _decisions(registry: Registry, public_key: Ed25519PublicKey) -> list[_Decided]:
    with registry.reader() as s:
        rows = s.execute(select(Decision, Solution, Supplier).join(Solution, Decision.solution_id == Solution.id)
                         .join(Supplier, Solution.supplier_id == Supplier.id).order_by(Decision.id)).all()
    out = []
    for d, sol, sup in rows:
        table_identity = (sup.handle, sol.name, sol.version)
        if sha256_hex(d.report.encode()) != d.report_sha256:
            out.append(_Decided(d, table_identity, None, "stored report does not match its hash"))
            continue
        report = orjson.loads(d.report)
        problems = verify_document(report, public_key)
        cert = report.get("certification", {})
        if problems:
            out.append(_Decided(d, table_identity, None, f"signature does not verify with the team key: {problems[0]}"))
        elif not all(isinstance(cert.get(k), str) for k in IDENTITY):
            out.append(_Decided(d, table_identity, None, "its certification does not name the solution and version "
                                                         "(decided by an older care-assure); decide it again"))
        else:
            out.append(_Decided(d, (cert["supplier"], cert["solution_name"], cert["solution_version"]), report, ""))
    return out


def _latest(decided: list[_Decided]) -> list[_Decided]:
    """The latest recorded decision about each solution (``decided`` is in recording order).

    A decision whose signature fails still supersedes earlier ones for the solution its row names:
    a doubtful decision can only take a solution off the list, never put one on it.
    """
    return list({x.identity: x for x in decided}.values())


def _lapsed(cert: dict[str, Any], waivers: dict[int, Any], round_id: str, as_of: dt.date) -> str | None:
    """Why a decision that relied on waivers no longer stands (one revoked or expired), or None."""
    for w in cert.get("waivers", []):
        row = waivers.get(w.get("id"))
        what = f"waiver {w.get('id')} for {w.get('rule')}"
        if row is None or row.rule_id != w.get("rule"):
            return f"{what} is not in the registry: the decision relied on it"
        if row.revoked_at is not None:
            return f"{what} was revoked on {str(row.revoked_at)[:10]}: the decision relied on it"
        if not waiver_in_force(row, round_id, as_of) or as_of > dt.date.fromisoformat(w["expires"]):
            return f"{what} expired on {min(row.expires.isoformat(), w['expires'])}: the decision relied on it"
    return None


def build_listing(registry: Registry, public_key: Ed25519PublicKey, as_of: dt.date) -> Listing:
    """The solutions listed on ``as_of``, each entry taken from its signed certification.

    Table columns only find the decisions; what an entry says (supplier, solution and version,
    outcome, dates, expiry, waivers, capabilities) is read from the certification whose signature
    verifies with the team key. A decision that passed only with waivers stands only while every
    one of them does: it lapses when one is revoked or expires, and its listed expiry is the
    earliest of its own and its waivers'.
    """
    listing = Listing([], {})
    waivers = {w.id: w for w, _handle in registry.waivers()}
    for x in _latest(_decisions(registry, public_key)):
        name = f"{' '.join(x.identity)} (decision {x.row.id})"
        if x.report is None:
            if x.row.outcome == "pass":
                listing.left_out.append(f"{name}: {x.problem}")
            continue
        report, cert = x.report, x.report["certification"]
        if report["decision"]["outcome"] != "pass":
            continue
        if dt.date.fromisoformat(cert["expires"]) < as_of:
            listing.left_out.append(f"{name}: expired on {cert['expires']}")
            continue
        lapsed = _lapsed(cert, waivers, cert["round"], as_of)
        if lapsed:
            listing.left_out.append(f"{name}: {lapsed}")
            continue
        expires = min([cert["expires"], *(w["expires"] for w in cert["waivers"])])
        suite = report["run"]["suite"]
        listing.reports[x.row.report_sha256] = x.row.report
        listing.entries.append({
            "supplier": cert["supplier"], "supplier_name": cert.get("supplier_name", cert["supplier"]),
            "solution": cert["solution_name"], "version": cert["solution_version"],
            "capabilities": sorted(cert.get("capabilities", [])),
            "care_settings": sorted(cert.get("care_settings", [])),
            "suite": {"id": suite["id"], "version": suite["version"]}, "round": cert["round"],
            "assured_on": cert["decided"], "expires": expires,
            "waivers": [{"rule": w["rule"], "expires": w["expires"], "justification": w["justification"]}
                        for w in cert["waivers"]],
            "report_sha256": x.row.report_sha256, "key_id": report["signature"]["key_id"],
        })
    listing.entries.sort(key=lambda e: (e["supplier"], e["solution"], e["version"]))
    return listing


def publish(registry: Registry, key: Ed25519PrivateKey, out: Path, as_of: dt.date, signer: str = "") -> Listing:
    """Verify the registry, build the list from signed certifications, sign the chain head, write it all.

    The signed head is kept in the registry (and written as ``audit-seal.json``), so a later cut
    of the log's tail, or a rewrite of the chain before it, is found by ``audit verify``.
    """
    public_key = key.public_key()
    chain = registry.verify_audit(public_key)
    if chain.problems:
        raise ConfigurationError(f"the audit log does not verify, so nothing is published: {chain.problems[0]}"
                                 + (f" (and {len(chain.problems) - 1} more problems)" if len(chain.problems) > 1
                                    else ""))
    listing = build_listing(registry, public_key, as_of)
    doc = {"schema": LIST_SCHEMA, "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "as_of": as_of.isoformat(), "audit_head": chain.head, "entries": listing.entries}
    problems = instance_problems(doc, assured_list_schema_path(), "assured-list.json")
    if problems:  # our own output must match our own published schema
        raise ConfigurationError(problems)
    seal = registry.seal(key, signer)
    listing.audit_head = seal.head
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "reports").mkdir(exist_ok=True)
        for sha, text in listing.reports.items():
            (out / "reports" / f"{sha}.json").write_text(text, encoding="utf-8")
        (out / "assured-list.json").write_bytes(
            orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")
        (out / "assured-list.csv").write_text(_csv(listing.entries), encoding="utf-8")
        (out / "index.html").write_text(_html(doc), encoding="utf-8")
        (out / "audit-seal.json").write_text(seal.document + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write the published list to {out}: {exc.strerror or exc} "
                                 f"({exc.filename}); the registry's signed head was kept") from None
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
