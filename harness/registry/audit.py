"""The append-only audit log: each entry's hash covers its contents and the previous hash.

Every state change of the registry appends one entry in the same transaction. ``verify`` walks
the chain from the first entry and names the first one that is out of order, edited or cut
loose; it also checks that each submission and decision row still matches the entry that
recorded it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from harness.registry.models import AuditEntry, Decision, Submission
from harness.reports.signing import canonical, sha256_hex

GENESIS = "0" * 64


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, detail: dict[str, Any],
               prev_hash: str) -> str:
    return sha256_hex(canonical({"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
                                 "detail": detail, "prev_hash": prev_hash}))


def append(session: Session, actor: str, action: str, subject: str, detail: dict[str, Any]) -> AuditEntry:
    """Add the next entry to the chain inside the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":  # SQLite already holds its write lock (BEGIN IMMEDIATE)
        session.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
    last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = now()
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, subject=subject, detail=detail,
                       prev_hash=prev, hash=entry_hash(seq, at, actor, action, subject, detail, prev))
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    head: str
    problem: str | None  # the first broken entry, named; None when the chain holds


def verify(session: Session) -> ChainReport:
    prev, expected_seq, count = GENESIS, 1, 0
    recorded: dict[tuple[str, int], dict[str, Any]] = {}
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        count += 1
        name = f"audit entry {e.seq} ({e.action} {e.subject})"
        if e.seq != expected_seq:
            return ChainReport(count, prev, f"{name}: expected entry {expected_seq} here; entries were removed")
        if e.prev_hash != prev:
            return ChainReport(count, prev, f"{name}: does not link to entry {e.seq - 1}; the chain was cut "
                                            "or an earlier entry was replaced")
        if entry_hash(e.seq, e.at, e.actor, e.action, e.subject, e.detail, e.prev_hash) != e.hash:
            return ChainReport(count, prev, f"{name}: its contents no longer match its hash; it was edited")
        if e.action in ("submission.create", "decision.create"):
            recorded[(e.action.split(".")[0], int(e.detail["id"]))] = e.detail
        prev, expected_seq = e.hash, expected_seq + 1
    problem = _rows_problem(session, recorded)
    return ChainReport(count, prev, problem)


def _rows_problem(session: Session, recorded: dict[tuple[str, int], dict[str, Any]]) -> str | None:
    """Each submission and decision row must match what its audit entry recorded."""
    for sub in session.scalars(select(Submission).order_by(Submission.id)):
        detail = recorded.get(("submission", sub.id))
        if detail is None:
            return f"submission {sub.id}: has no audit entry; it was inserted behind the registry's back"
        if (detail["report_sha256"], detail["evidence_sha256"]) != (sub.report_sha256, sub.evidence_sha256) \
                or sha256_hex(sub.report.encode("utf-8")) != sub.report_sha256:
            return f"submission {sub.id}: its report or evidence hash no longer matches the audit log"
    for dec in session.scalars(select(Decision).order_by(Decision.id)):
        detail = recorded.get(("decision", dec.id))
        if detail is None:
            return f"decision {dec.id}: has no audit entry; it was inserted behind the registry's back"
        if (detail["outcome"], detail["report_sha256"]) != (dec.outcome, dec.report_sha256) \
                or sha256_hex(dec.report.encode("utf-8")) != dec.report_sha256:
            return f"decision {dec.id}: its outcome or report no longer matches the audit log"
    return None
