"""The append-only audit log: each entry's hash covers its contents and the previous hash.

Every state change of the registry appends one entry in the same transaction, carrying a
snapshot of every column of the row it created or changed (long texts by their SHA-256).
``verify`` walks the chain from the first entry and names the first one that is out of order,
edited or cut loose; replays the snapshots and names every row whose columns differ from the
entry that last recorded it (or that no entry recorded); checks evidence bundles against their
hashes; and checks the chain against the heads the team signed at each publish, so a cut tail
or a rewritten chain is found even though the chain hash itself is unkeyed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from harness.registry.models import (
    AuditEntry,
    AuditSeal,
    Base,
    Decision,
    Round,
    Solution,
    Submission,
    Supplier,
    User,
    Waiver,
    Witness,
)
from harness.reports.signing import canonical, sha256_hex

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
SEAL_SCHEMA = "care-assure/audit-seal/v1"
HASHED_TEXT = ("report", "document", "password_hash")  # recorded by their SHA-256, not in full
TRACKED: tuple[type[Base], ...] = (Supplier, Solution, Round, Submission, Waiver, Decision, AuditSeal, User, Witness)
MAX_PROBLEMS = 20


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, detail: dict[str, Any],
               prev_hash: str) -> str:
    return sha256_hex(canonical({"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
                                 "detail": detail, "prev_hash": prev_hash}))


def snapshot(row: Base) -> dict[str, Any]:
    """Every column of a row as JSON values: dates as ISO text, long texts as their SHA-256."""
    out: dict[str, Any] = {}
    for attr in inspect(row).mapper.column_attrs:
        value = getattr(row, attr.key)
        if attr.key in HASHED_TEXT and isinstance(value, str):
            out[f"{attr.key}_text_sha256"] = sha256_hex(value.encode("utf-8"))
        elif isinstance(value, dt.date):
            out[attr.key] = value.isoformat()
        else:
            out[attr.key] = value
    return out


def _key(row: Base) -> str:
    return str(inspect(row).identity[0])  # type: ignore[index]


def append(session: Session, actor: str, action: str, subject: str, detail: dict[str, Any],
           row: Base | None = None) -> AuditEntry:
    """Add the next entry to the chain inside the caller's transaction (with ``row``'s snapshot)."""
    if session.get_bind().dialect.name == "postgresql":  # SQLite already holds its write lock (BEGIN IMMEDIATE)
        session.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
    if row is not None:
        session.flush()
        detail = {**detail, "table": row.__tablename__, "row": snapshot(row)}
    last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = now()
    entry = AuditEntry(seq=seq, at=at, actor=actor, action=action, subject=subject, detail=detail,
                       prev_hash=prev, hash=entry_hash(seq, at, actor, action, subject, detail, prev))
    session.add(entry)
    session.flush()
    return entry


def seal_document(seq: int, head: str) -> dict[str, Any]:
    """What the team signs at a publish: the chain up to entry ``seq`` ends in ``head``."""
    return {"schema": SEAL_SCHEMA, "seq": seq, "head": head, "sealed_at": now()}


@dataclass(slots=True)
class ChainReport:
    entries: int
    head: str
    problems: list[str] = field(default_factory=list)  # each broken thing, named; [] when everything holds
    notes: list[str] = field(default_factory=list)  # what verify could not vouch for, and why

    @property
    def problem(self) -> str | None:
        return self.problems[0] if self.problems else None


def verify(session: Session, *, store: Path | None = None, public_key: Ed25519PublicKey | None = None,
           seals: list[dict[str, Any]] | None = None) -> ChainReport:
    """The chain, every row against its audit entry, evidence files, and the signed heads."""
    report = ChainReport(0, GENESIS)
    hashes: dict[int, str] = {}
    expected: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        report.entries += 1
        name = f"audit entry {e.seq} ({e.action} {e.subject})"
        if e.seq != len(hashes) + 1:
            report.problems.append(f"{name}: expected entry {len(hashes) + 1} here; entries were removed")
            break
        if e.prev_hash != report.head:
            report.problems.append(f"{name}: does not link to entry {e.seq - 1}; the chain was cut "
                                   "or an earlier entry was replaced")
            break
        if entry_hash(e.seq, e.at, e.actor, e.action, e.subject, e.detail, e.prev_hash) != e.hash:
            report.problems.append(f"{name}: its contents no longer match its hash; it was edited")
            break
        if isinstance(e.detail.get("row"), dict):
            row = e.detail["row"]
            expected[(e.detail["table"], str(row["id"]))] = (row, e.seq)
        hashes[e.seq] = report.head = e.hash
    _check_rows(session, expected, report)
    _check_evidence(session, store, report)
    _check_seals(session, hashes, public_key, seals or [], report)
    if public_key is not None:
        _check_decisions(session, public_key, report)
    del report.problems[MAX_PROBLEMS:]
    return report


def _check_rows(session: Session, expected: dict[tuple[str, str], tuple[dict[str, Any], int]],
                report: ChainReport) -> None:
    """Every row of every table must equal the snapshot its last audit entry recorded."""
    seen = set()
    for model in TRACKED:
        table = model.__tablename__
        for row in session.scalars(select(model)):
            key = (table, _key(row))
            seen.add(key)
            what = f"{table} {key[1]}"
            if key not in expected:
                report.problems.append(f"{what}: has no audit entry; it was inserted behind the registry's back")
                continue
            recorded, seq = expected[key]
            actual = snapshot(row)
            for column in sorted(set(recorded) | set(actual)):
                if recorded.get(column) != actual.get(column):
                    report.problems.append(
                        f"{what}: {column} is {_shown(actual.get(column))} in the table but audit entry {seq} "
                        f"recorded {_shown(recorded.get(column))}; it was changed behind the registry's back")
    for gone in sorted(set(expected) - seen):
        report.problems.append(f"{gone[0]} {gone[1]}: recorded by audit entry {expected[gone][1]} but missing "
                               "from the table; it was deleted")


def _shown(value: Any) -> str:
    shown = orjson.dumps(value).decode()
    return shown if len(shown) <= 80 else shown[:77] + "…"


def _check_evidence(session: Session, store: Path | None, report: ChainReport) -> None:
    from harness.reports.bundle import hash_file  # noqa: PLC0415 - only verify reads bundles

    referenced = set()
    for sub in session.scalars(select(Submission).order_by(Submission.id)):
        path = Path(sub.evidence_path)
        referenced.add(path.resolve())
        if not path.is_file():
            report.problems.append(f"submission {sub.id}: evidence bundle {path} is missing")
        elif hash_file(path)[0] != sub.evidence_sha256:
            report.problems.append(f"submission {sub.id}: evidence bundle {path} no longer matches its SHA-256; "
                                   "it was overwritten")
    for w in session.scalars(select(Witness).where(Witness.evidence_sha256.is_not(None)).order_by(Witness.id)):
        if store is None or w.evidence_sha256 is None:
            continue
        upload = store / "uploads" / w.evidence_sha256[:2] / w.evidence_sha256
        if not upload.is_file():
            report.problems.append(f"witness answer {w.id}: its evidence file {upload} is missing")
        elif hash_file(upload)[0] != w.evidence_sha256:
            report.problems.append(f"witness answer {w.id}: its evidence file {upload} no longer matches its "
                                   "SHA-256; it was overwritten")
    if store is not None and store.is_dir():
        for orphan in sorted(p for p in store.rglob("*.zip") if p.resolve() not in referenced):
            report.notes.append(f"{orphan}: an evidence bundle no submission refers to (left by a write that "
                                "failed or was killed); it can be deleted")


def _check_seals(session: Session, hashes: dict[int, str], public_key: Ed25519PublicKey | None,
                 external: list[dict[str, Any]], report: ChainReport) -> None:
    """Each signed head must still be in the chain, at its place, with its hash."""
    from harness.reports.signing import verify_document  # noqa: PLC0415 - cryptography only when needed

    docs = [(f"the head signed at publish (seal {s.id})", orjson.loads(s.document))
            for s in session.scalars(select(AuditSeal).order_by(AuditSeal.id))]
    docs += [("the signed head given with --seal", doc) for doc in external]
    last = 0
    for name, doc in docs:
        if doc.get("schema") != SEAL_SCHEMA or not isinstance(doc.get("seq"), int):
            report.problems.append(f"{name}: not an audit seal")
            continue
        if public_key is not None:
            bad = verify_document(doc, public_key)
            if bad:
                report.problems.append(f"{name}: its signature does not verify with the team key: {bad[0]}")
                continue
        seq, head = doc["seq"], doc.get("head")
        if seq not in hashes:
            report.problems.append(f"{name} covers entries up to {seq}, but the log has only {len(hashes)} "
                                   "verifiable entries; its tail was cut")
        elif hashes[seq] != head:
            report.problems.append(f"{name} says entry {seq} ends in {head}, but the log has {hashes[seq]}; "
                                   "the chain was rewritten")
        else:
            last = max(last, seq)
    if public_key is None and docs:
        report.notes.append("signed heads were compared but their signatures not checked (give --public-key)")
    if not docs:
        report.notes.append("no signed head yet: a cut tail cannot be detected until the first publish")
    elif last and len(hashes) > last:
        report.notes.append(f"entries {last + 1}–{len(hashes)} come after the last signed head; the next publish "
                            "signs them")


def _check_decisions(session: Session, public_key: Ed25519PublicKey, report: ChainReport) -> None:
    """A signed certification must say what its row says (round, supplier, solution, submission)."""
    from harness.reports.signing import verify_document  # noqa: PLC0415 - cryptography only when needed

    rows = session.execute(select(Decision, Solution, Supplier, Submission)
                           .join(Solution, Decision.solution_id == Solution.id)
                           .join(Supplier, Solution.supplier_id == Supplier.id)
                           .join(Submission, Decision.submission_id == Submission.id)
                           .order_by(Decision.id)).all()
    for d, sol, sup, sub in rows:
        if d.key_id is None:
            continue
        doc = orjson.loads(d.report)
        bad = verify_document(doc, public_key)
        if bad:
            report.problems.append(f"decision {d.id}: its certification does not verify with the team key: {bad[0]}")
            continue
        cert = doc.get("certification", {})
        said = (cert.get("round"), cert.get("supplier"), cert.get("solution"), cert.get("submission_sha256"))
        rows_say = (d.round_id, sup.handle, f"{sol.name} {sol.version}", sub.report_sha256)
        if said != rows_say:
            report.problems.append(f"decision {d.id}: its signed certification is for {said[1]} {said[2]} in round "
                                   f"{said[0]}, but the row says {rows_say[1]} {rows_say[2]} in round {rows_say[0]}")

