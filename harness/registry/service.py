"""Registry operations for the assurance team; each state change is one transaction with its audit entry."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from harness.decision import apply_waivers, apply_witnesses, decide
from harness.errors import ConfigurationError
from harness.paths import report_schema_path
from harness.registry import accounts, audit
from harness.registry.db import database_url, sessions
from harness.registry.models import (
    AuditEntry,
    AuditSeal,
    Decision,
    Round,
    Solution,
    Submission,
    Supplier,
    User,
    Waiver,
    Witness,
)
from harness.reports.bundle import build_bundle, hash_file
from harness.reports.canonical import certify_report, dumps
from harness.reports.load import run_result_from_report
from harness.reports.signing import key_id, sha256_hex, sign_document
from harness.results import Level
from harness.schemas import instance_problems
from harness.suites import Catalogue, Policy

PAUSE_BEFORE_COMMIT = "CARE_ASSURE_PAUSE_BEFORE_COMMIT"  # fault-injection point for the crash-safety test
DEFAULT_VALIDITY = dt.timedelta(days=365)
MAX_UPLOAD = 20 * 1024 * 1024  # an evidence file an assessor uploads for a witnessed step
UPLOADS = "uploads"  # under the store: files kept by their SHA-256, never by the name they came with


def _actor(given: str | None) -> str:
    return given or os.environ.get("CARE_ASSURE_ACTOR") or os.environ.get("USER") or "unknown"


@dataclass
class Registry:
    factory: sessionmaker[Session]  # sessions that write: one at a time, each with its audit entry
    reader: sessionmaker[Session]  # sessions that only read: never wait on a writer
    store: Path
    actor: str

    @classmethod
    def open(cls, url: str | None = None, store: Path | None = None, actor: str | None = None) -> Registry:
        store = (store or Path(os.environ.get("CARE_ASSURE_STORE", "assure-evidence"))).absolute()
        writer, reader = sessions(database_url(url))
        return cls(writer, reader, store, _actor(actor))

    def close(self) -> None:
        engine = self.factory.kw.get("bind")
        if engine is not None:
            engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def acting_as(self, actor: str) -> Registry:
        """The same registry, recording ``actor`` in the audit log (the web workspace's signed-in user)."""
        return replace(self, actor=actor)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        try:
            with self.factory.begin() as session:
                yield session
        except IntegrityError as exc:
            raise ConfigurationError(f"the registry refused the change: {exc.orig}") from None
        except OperationalError as exc:  # disk full, read-only file, lock held past the busy timeout
            raise ConfigurationError(f"the registry database could not be written, nothing was changed: "
                                     f"{exc.orig}") from None

    # -- suppliers -------------------------------------------------------------------------------------

    def add_supplier(self, handle: str, name: str, solution: str, version: str,
                     care_settings: list[str], capabilities: list[str]) -> Solution:
        with self.transaction() as s:
            supplier = s.scalars(select(Supplier).where(Supplier.handle == handle)).first()
            if supplier is None:
                supplier = Supplier(handle=handle, name=name, created_at=audit.now())
                s.add(supplier)
                s.flush()
                audit.append(s, self.actor, "supplier.create", handle, {"id": supplier.id, "name": name}, supplier)
            if s.scalars(select(Solution).where(Solution.supplier_id == supplier.id, Solution.name == solution,
                                                Solution.version == version)).first():
                raise ConfigurationError(f"supplier '{handle}' already has {solution} {version}")
            sol = Solution(supplier_id=supplier.id, name=solution, version=version, care_settings=care_settings,
                           capabilities=capabilities, created_at=audit.now())
            s.add(sol)
            s.flush()
            audit.append(s, self.actor, "solution.create", handle,
                         {"id": sol.id, "name": solution, "version": version, "care_settings": care_settings,
                          "capabilities": capabilities}, sol)
            return sol

    def suppliers(self) -> list[tuple[Supplier, list[Solution]]]:
        with self.reader() as s:
            return [(sup, list(s.scalars(select(Solution).where(Solution.supplier_id == sup.id)
                                         .order_by(Solution.id))))
                    for sup in s.scalars(select(Supplier).order_by(Supplier.handle))]

    def _supplier(self, s: Session, handle: str) -> Supplier:
        supplier = s.scalars(select(Supplier).where(Supplier.handle == handle)).first()
        if supplier is None:
            known = ", ".join(s.scalars(select(Supplier.handle).order_by(Supplier.handle))) or "none"
            raise ConfigurationError(f"no supplier '{handle}' (known: {known}); add it with `supplier add`")
        return supplier

    def _solution(self, s: Session, supplier: Supplier, name: str | None, version: str | None) -> Solution:
        query = select(Solution).where(Solution.supplier_id == supplier.id)
        if name:
            query = query.where(Solution.name == name)
        if version:
            query = query.where(Solution.version == version)
        found = list(s.scalars(query.order_by(Solution.id)))
        if not found:
            raise ConfigurationError(f"supplier '{supplier.handle}' has no solution matching "
                                     f"{name or '*'} {version or '*'}")
        if len(found) > 1 and not (name and version):
            raise ConfigurationError(f"supplier '{supplier.handle}' has {len(found)} solutions; "
                                     "name one with --solution and --solution-version")
        return found[0]

    # -- rounds ----------------------------------------------------------------------------------------

    def open_round(self, round_id: str, suite_ref: str, as_of: dt.date, opens: dt.date, closes: dt.date,
                   catalogue: Catalogue) -> Round:
        if closes < opens:
            raise ConfigurationError(f"round '{round_id}': closes ({closes}) is before opens ({opens})")
        suite = catalogue.suite(suite_ref)
        policy = {"blocking_levels": sorted(x.value for x in suite.policy.blocking_levels),
                  "warning_levels": sorted(x.value for x in suite.policy.warning_levels)}
        with self.transaction() as s:
            if s.get(Round, round_id) is not None:
                raise ConfigurationError(f"round '{round_id}' already exists")
            source = str(Path(suite_ref).resolve()) if Path(suite_ref).is_file() else suite.id
            rnd = Round(id=round_id, suite=suite.id, suite_source=source, suite_version=suite.version, as_of=as_of,
                        opens=opens, closes=closes, policy=policy, status="open", created_at=audit.now(),
                        closed_at=None)
            s.add(rnd)
            s.flush()
            audit.append(s, self.actor, "round.open", round_id,
                         {"suite": suite.id, "suite_version": suite.version, "as_of": as_of.isoformat(),
                          "opens": opens.isoformat(), "closes": closes.isoformat(), "policy": policy}, rnd)
            return rnd

    def round(self, round_id: str) -> Round:
        with self.reader() as s:
            return self._round(s, round_id)

    def _round(self, s: Session, round_id: str) -> Round:
        rnd = s.get(Round, round_id)
        if rnd is None:
            known = ", ".join(s.scalars(select(Round.id).order_by(Round.id))) or "none"
            raise ConfigurationError(f"no round '{round_id}' (known: {known})")
        return rnd

    def rounds(self) -> list[Round]:
        with self.reader() as s:
            return list(s.scalars(select(Round).order_by(Round.opens, Round.id)))

    def close_round(self, round_id: str) -> Round:
        with self.transaction() as s:
            rnd = self._round(s, round_id)
            if rnd.status == "closed":
                raise ConfigurationError(f"round '{round_id}' is already closed")
            rnd.status, rnd.closed_at = "closed", audit.now()
            audit.append(s, self.actor, "round.close", round_id, {}, rnd)
            return rnd

    def round_detail(self, round_id: str) -> dict[str, Any]:
        with self.reader() as s:
            rnd = self._round(s, round_id)
            subs = s.execute(select(Submission, Solution, Supplier)
                             .join(Solution, Submission.solution_id == Solution.id)
                             .join(Supplier, Solution.supplier_id == Supplier.id)
                             .where(Submission.round_id == round_id).order_by(Submission.id)).all()
            decs = s.execute(select(Decision, Solution, Supplier).join(Solution, Decision.solution_id == Solution.id)
                             .join(Supplier, Solution.supplier_id == Supplier.id)
                             .where(Decision.round_id == round_id).order_by(Decision.id)).all()
            return {
                "round": rnd,
                "submissions": [{"id": x.id, "supplier": sup.handle, "solution": f"{sol.name} {sol.version}",
                                 "outcome": x.outcome, "sha256": x.report_sha256, "at": x.submitted_at,
                                 "by": x.submitted_by} for x, sol, sup in subs],
                "decisions": [{"id": d.id, "supplier": sup.handle, "solution": f"{sol.name} {sol.version}",
                               "outcome": d.outcome, "assessor": d.assessor, "decided_on": d.decided_on.isoformat(),
                               "expires": d.expires.isoformat(), "signed": d.key_id is not None}
                              for d, sol, sup in decs],
            }

    # -- submissions -----------------------------------------------------------------------------------

    def submit(self, round_id: str, supplier_handle: str, report_dir: Path, *, solution: str | None = None,
               solution_version: str | None = None, key: Ed25519PrivateKey | None = None, signer: str = "",
               today: dt.date | None = None) -> Submission:
        """Store a run's report and an evidence bundle of its directory; the report must match the round."""
        report_path = report_dir / "report.json" if report_dir.is_dir() else report_dir
        report_dir = report_path.parent
        raw, report = read_report(report_path)
        today = today or dt.date.today()
        with self.reader() as s:  # check before writing anything
            rnd = self._round(s, round_id)
            _check_submittable(rnd, report, report_path, today)
            self._solution(s, self._supplier(s, supplier_handle), solution, solution_version)
        bundle = self.store / round_id / f"{supplier_handle}-{today.isoformat()}-{uuid.uuid4().hex[:12]}.zip"
        try:
            build_bundle(report_dir, bundle, key=key, signer=signer)
            evidence_sha = _file_sha256(bundle)
        except OSError as exc:
            bundle.unlink(missing_ok=True)
            raise ConfigurationError(f"cannot write the evidence bundle {bundle}: {exc.strerror or exc}; "
                                     "nothing was submitted") from None
        try:
            return self._record_submission(round_id, supplier_handle, raw, report, report_path, bundle,
                                           evidence_sha, solution, solution_version, today)
        except BaseException:
            bundle.unlink(missing_ok=True)  # a killed process leaves it for `audit verify` to report
            raise

    def _record_submission(self, round_id: str, supplier_handle: str, raw: str, report: dict[str, Any],
                           report_path: Path, bundle: Path, evidence_sha: str, solution: str | None,
                           solution_version: str | None, today: dt.date) -> Submission:
        with self.transaction() as s:
            rnd = self._round(s, round_id)
            _check_submittable(rnd, report, report_path, today)
            sol = self._solution(s, self._supplier(s, supplier_handle), solution, solution_version)
            sub = Submission(round_id=round_id, solution_id=sol.id, report=raw, report_sha256=sha256_hex(raw.encode()),
                             outcome=report["decision"]["outcome"], evidence_path=str(bundle),
                             evidence_sha256=evidence_sha, submitted_by=self.actor, submitted_at=audit.now())
            s.add(sub)
            s.flush()
            audit.append(s, self.actor, "submission.create", f"{round_id}/{supplier_handle}",
                         {"id": sub.id, "solution": sol.id, "report_sha256": sub.report_sha256,
                          "evidence_sha256": evidence_sha, "run": report["run"]["id"], "outcome": sub.outcome},
                         sub)
            _pause_point()
            return sub

    # -- waivers ---------------------------------------------------------------------------------------

    def grant_waiver(self, rule_id: str, *, justification: str, expires: dt.date, supplier: str | None = None,
                     round_id: str | None = None, known_rules: set[str] | None = None,
                     owner: str | None = None) -> Waiver:
        if not justification.strip():
            raise ConfigurationError("a waiver needs a justification")
        if known_rules is not None and rule_id not in known_rules:
            raise ConfigurationError(f"no rule '{rule_id}' in the installed packs; a waiver must name a rule")
        with self.transaction() as s:
            supplier_id = self._supplier(s, supplier).id if supplier else None
            if round_id:
                self._round(s, round_id)
            w = Waiver(rule_id=rule_id, supplier_id=supplier_id, round_id=round_id, justification=justification,
                       granted_by=self.actor, granted_at=audit.now(), expires=expires, revoked_by=None,
                       revoked_at=None, owner=(owner or "").strip() or None, revoke_reason=None)
            s.add(w)
            s.flush()
            audit.append(s, self.actor, "waiver.grant", rule_id,
                         {"id": w.id, "supplier": supplier, "round": round_id, "expires": expires.isoformat(),
                          "justification": justification, "owner": w.owner}, w)
            return w

    def revoke_waiver(self, waiver_id: int, reason: str) -> Waiver:
        if not reason.strip():
            raise ConfigurationError("revoking a waiver needs a reason")
        with self.transaction() as s:
            w = s.get(Waiver, waiver_id)
            if w is None:
                raise ConfigurationError(f"no waiver {waiver_id}")
            if w.revoked_at:
                raise ConfigurationError(f"waiver {waiver_id} was already revoked")
            w.revoked_by, w.revoked_at, w.revoke_reason = self.actor, audit.now(), reason.strip()
            audit.append(s, self.actor, "waiver.revoke", w.rule_id, {"id": w.id, "reason": w.revoke_reason}, w)
            return w

    def waivers(self) -> list[tuple[Waiver, str | None]]:
        with self.reader() as s:
            rows = s.execute(select(Waiver, Supplier.handle).outerjoin(Supplier, Waiver.supplier_id == Supplier.id)
                             .order_by(Waiver.id)).all()
            return [(w, handle) for w, handle in rows]

    # -- decisions -------------------------------------------------------------------------------------

    def decide(self, round_id: str, supplier_handle: str, *, solution: str | None = None,
               solution_version: str | None = None, on: dt.date | None = None, expires: dt.date | None = None,
               key: Ed25519PrivateKey | None = None, signer: str = "") -> tuple[Decision, dict[str, Any]]:
        """Apply the round's policy and the waivers in force to the latest submission, and record it."""
        on = on or dt.date.today()
        with self.transaction() as s:
            rnd = self._round(s, round_id)
            supplier = self._supplier(s, supplier_handle)
            sol = self._solution(s, supplier, solution, solution_version)
            sub = s.scalars(select(Submission).where(Submission.round_id == round_id,
                                                     Submission.solution_id == sol.id)
                            .order_by(Submission.id.desc()).limit(1)).first()
            if sub is None:
                raise ConfigurationError(f"round '{round_id}' has no submission from '{supplier_handle}'")
            if sha256_hex(sub.report.encode()) != sub.report_sha256:
                raise ConfigurationError(f"submission {sub.id}: stored report does not match its hash; "
                                         "run `audit verify`")
            if not Path(sub.evidence_path).is_file() or _file_sha256(Path(sub.evidence_path)) != sub.evidence_sha256:
                raise ConfigurationError(f"submission {sub.id}: evidence bundle {sub.evidence_path} is missing "
                                         "or changed since it was submitted")
            in_force = [w for w in s.scalars(select(Waiver).order_by(Waiver.id))
                        if waiver_applies(w, supplier.id, round_id, on)]
            report = orjson.loads(sub.report)
            result, _ = run_result_from_report(report)
            answers = _latest_answers(s, sub.id)
            self._check_uploads(answers.values())
            rules = apply_witnesses(result.rules, {rule: (w.answer, w.answered_by, w.answered_at[:10])
                                                   for rule, w in answers.items()})
            rules, used = apply_waivers(rules, {w.rule_id for w in in_force})
            decision = decide(rules, policy_of(rnd), result.could_not_evaluate)
            expiry = expires or on + DEFAULT_VALIDITY
            levels = {r.rule: r.level.value for r in rules}
            waived = [{"id": w.id, "rule": w.rule_id, "level": levels.get(w.rule_id, ""),
                       "justification": w.justification, "granted_by": w.granted_by,
                       "expires": w.expires.isoformat()}
                      for w in in_force if w.rule_id in used]
            certified = certify_report(report, rules, decision, {
                "round": round_id, "supplier": supplier_handle, "solution": f"{sol.name} {sol.version}",
                "supplier_name": supplier.name, "solution_name": sol.name, "solution_version": sol.version,
                "capabilities": sorted(sol.capabilities), "care_settings": sorted(sol.care_settings),
                "assessor": self.actor, "decided": on.isoformat(), "expires": expiry.isoformat(),
                "submission_sha256": sub.report_sha256, "waivers": waived,
                "witnessed": [_witnessed(w) for w in answers.values()]})
            if key is not None:
                certified = sign_document(certified, key, signer or self.actor)
            text = dumps(certified).decode("utf-8")
            row = Decision(round_id=round_id, solution_id=sol.id, submission_id=sub.id, outcome=decision.outcome,
                           assessor=self.actor, reasons=[r.rule for r in decision.reasons],
                           waivers=[w["id"] for w in waived], decided_on=on, expires=expiry, report=text,
                           report_sha256=sha256_hex(text.encode()),
                           key_id=key_id(key.public_key()) if key else None, created_at=audit.now())
            s.add(row)
            s.flush()
            audit.append(s, self.actor, "decision.create", f"{round_id}/{supplier_handle}",
                         {"id": row.id, "submission": sub.id, "outcome": row.outcome,
                          "report_sha256": row.report_sha256, "waivers": row.waivers, "key_id": row.key_id}, row)
            return row, certified

    # -- witnessed steps -------------------------------------------------------------------------------

    def upload_path(self, sha256: str) -> Path:
        return self.store / UPLOADS / sha256[:2] / sha256

    def store_upload(self, data: bytes) -> str:
        """Keep an uploaded evidence file under its SHA-256 (the name it came with is never used)."""
        if len(data) > MAX_UPLOAD:
            raise ConfigurationError(f"the evidence file is {len(data):,} bytes; at most {MAX_UPLOAD:,} are taken")
        sha = hashlib.sha256(data).hexdigest()
        path = self.upload_path(sha)
        if path.is_file() and _file_sha256(path) == sha:
            return sha
        part = path.with_name(path.name + ".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(data)
            part.replace(path)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise ConfigurationError(f"cannot keep the evidence file: {exc.strerror or exc}; nothing was recorded") \
                from None
        return sha

    def witness(self, submission_id: int, rule_id: str, *, answer: bool, note: str,
                evidence: bytes | None = None, evidence_type: str | None = None) -> Witness:
        """Record an assessor's answer to a step of a submission that no data shows (a manual rule).

        "Met" needs an evidence file (what the assessor saw, kept by its hash); "not met" needs a
        note saying why. A later answer to the same step supersedes an earlier one.
        """
        note = note.strip()
        if answer and not evidence:
            raise ConfigurationError("a step witnessed as met needs the evidence file the assessor saw")
        if not answer and not note:
            raise ConfigurationError("a step witnessed as not met needs a note saying why")
        with self.reader() as s:
            sub = self._submission(s, submission_id)
            self._check_witnessable(s, sub, rule_id)
        sha = self.store_upload(evidence) if evidence else None
        with self.transaction() as s:
            sub = self._submission(s, submission_id)
            self._check_witnessable(s, sub, rule_id)
            row = Witness(submission_id=sub.id, rule_id=rule_id, answer=answer, note=note, evidence_sha256=sha,
                          evidence_size=len(evidence) if evidence else None,
                          evidence_type=(evidence_type or "application/octet-stream")[:100] if evidence else None,
                          answered_by=self.actor, answered_at=audit.now())
            s.add(row)
            s.flush()
            audit.append(s, self.actor, "witness.record", f"submission {sub.id}/{rule_id}",
                         {"id": row.id, "answer": answer, "evidence_sha256": sha}, row)
            return row

    def _submission(self, s: Session, submission_id: int) -> Submission:
        sub = s.get(Submission, submission_id)
        if sub is None:
            raise ConfigurationError(f"no submission {submission_id}")
        return sub

    def _check_witnessable(self, s: Session, sub: Submission, rule_id: str) -> None:
        rnd = self._round(s, sub.round_id)
        if rnd.status != "open":
            raise ConfigurationError(f"round '{rnd.id}' is closed; its steps can no longer be witnessed")
        rules = {r["id"]: r for r in orjson.loads(sub.report)["rules"]}
        if rule_id not in rules:
            raise ConfigurationError(f"submission {sub.id} has no rule '{rule_id}'")
        if rules[rule_id]["outcome"] != "manual":
            raise ConfigurationError(f"rule '{rule_id}' was {rules[rule_id]['outcome']} in submission {sub.id}; "
                                     "only steps no data could show (manual) are witnessed")

    def witnesses(self, submission_id: int) -> list[Witness]:
        with self.reader() as s:
            return list(s.scalars(select(Witness).where(Witness.submission_id == submission_id)
                                  .order_by(Witness.id)))

    def _check_uploads(self, answers: Any) -> None:
        for w in answers:
            if w.evidence_sha256 and (not self.upload_path(w.evidence_sha256).is_file()
                                      or _file_sha256(self.upload_path(w.evidence_sha256)) != w.evidence_sha256):
                raise ConfigurationError(f"witness answer {w.id} ({w.rule_id}): its evidence file is missing or "
                                         "changed since it was uploaded; run `audit verify`")

    def submission(self, submission_id: int) -> dict[str, Any]:
        """A submission with its round, supplier, solution, report and witness answers."""
        with self.reader() as s:
            sub = self._submission(s, submission_id)
            sol = s.get(Solution, sub.solution_id)
            sup = s.get(Supplier, sol.supplier_id) if sol else None
            assert sol is not None and sup is not None  # foreign keys
            return {"submission": sub, "round": self._round(s, sub.round_id), "supplier": sup, "solution": sol,
                    "report": orjson.loads(sub.report),
                    "witnesses": list(s.scalars(select(Witness).where(Witness.submission_id == sub.id)
                                                .order_by(Witness.id)))}

    def decisions_for(self, submission_id: int) -> list[Decision]:
        with self.reader() as s:
            return list(s.scalars(select(Decision).where(Decision.submission_id == submission_id)
                                  .order_by(Decision.id)))

    # -- accounts ------------------------------------------------------------------------------------

    def add_user(self, username: str, role: str, password: str) -> User:
        accounts.check_username(username)
        accounts.check_role(role)
        hashed = accounts.hash_password(password)
        with self.transaction() as s:
            if s.scalars(select(User).where(User.username == username)).first():
                raise ConfigurationError(f"user '{username}' already exists")
            user = User(username=username, role=role, password_hash=hashed, created_by=self.actor,
                        created_at=audit.now(), disabled_at=None)
            s.add(user)
            s.flush()
            audit.append(s, self.actor, "user.create", username, {"id": user.id, "role": role}, user)
            return user

    def disable_user(self, username: str) -> User:
        with self.transaction() as s:
            user = s.scalars(select(User).where(User.username == username)).first()
            if user is None:
                raise ConfigurationError(f"no user '{username}'")
            if user.disabled_at:
                raise ConfigurationError(f"user '{username}' is already disabled")
            user.disabled_at = audit.now()
            audit.append(s, self.actor, "user.disable", username, {"id": user.id}, user)
            return user

    def users(self) -> list[User]:
        with self.reader() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def user(self, username: str) -> User | None:
        """An account that may sign in (not disabled), or None."""
        with self.reader() as s:
            user = s.scalars(select(User).where(User.username == username)).first()
            return user if user is not None and user.disabled_at is None else None

    def authenticate(self, username: str, password: str) -> User | None:
        """The account when the password matches; the same work is done for an unknown name."""
        user = self.user(username[:64])
        return user if accounts.password_matches(user.password_hash if user else None, password) else None

    def verify_audit(self, public_key: Ed25519PublicKey | None = None,
                     seals: list[dict[str, Any]] | None = None) -> audit.ChainReport:
        with self.reader() as s:
            return audit.verify(s, store=self.store, public_key=public_key, seals=seals)

    def seal(self, key: Ed25519PrivateKey, signer: str = "") -> AuditSeal:
        """Sign the chain's head with the team key, keep the signed head, and record that in the chain."""
        with self.transaction() as s:
            last = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
            if last is None:
                raise ConfigurationError("the audit log is empty; there is nothing to seal")
            doc = sign_document(audit.seal_document(last.seq, last.hash), key, signer or self.actor)
            row = AuditSeal(seq=last.seq, head=last.hash, document=dumps(doc).decode("utf-8"),
                            key_id=doc["signature"]["key_id"], created_at=audit.now())
            s.add(row)
            s.flush()
            audit.append(s, self.actor, "audit.seal", "audit", {"id": row.id, "seq": last.seq, "head": last.hash},
                         row)
            return row

    def audit_entries(self) -> list[dict[str, Any]]:
        with self.reader() as s:
            return [{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject}
                    for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def _latest_answers(s: Session, submission_id: int) -> dict[str, Witness]:
    """The answer in force for each witnessed step of a submission: the latest one recorded."""
    rows = s.scalars(select(Witness).where(Witness.submission_id == submission_id).order_by(Witness.id))
    return {w.rule_id: w for w in rows}


def _witnessed(w: Witness) -> dict[str, Any]:
    return {"id": w.id, "rule": w.rule_id, "answer": "met" if w.answer else "not met", "by": w.answered_by,
            "at": w.answered_at, "note": w.note, "evidence_sha256": w.evidence_sha256 or ""}


def waiver_in_force(w: Waiver, round_id: str, on: dt.date) -> bool:
    """Not revoked, in force on ``on`` (up to and including its expiry day), and for this round (or any)."""
    return w.revoked_at is None and on <= w.expires and w.round_id in (None, round_id)


def waiver_applies(w: Waiver, supplier_id: int, round_id: str, on: dt.date) -> bool:
    return waiver_in_force(w, round_id, on) and w.supplier_id in (None, supplier_id)


def policy_of(rnd: Round) -> Policy:
    return Policy(frozenset(Level(x) for x in rnd.policy["blocking_levels"]),
                  frozenset(Level(x) for x in rnd.policy["warning_levels"]))


def read_report(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        raw = path.read_text(encoding="utf-8")
        report = orjson.loads(raw)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the report ({exc.strerror})") from None
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: not a JSON report ({exc})") from None
    problems = instance_problems(report, report_schema_path(), str(path))
    if problems:
        raise ConfigurationError(problems)
    return raw, report


def _check_submittable(rnd: Round, report: dict[str, Any], path: Path, today: dt.date) -> None:
    if rnd.status != "open":
        raise ConfigurationError(f"round '{rnd.id}' is closed; it takes no more submissions")
    if not rnd.opens <= today <= rnd.closes:
        raise ConfigurationError(f"round '{rnd.id}' takes submissions from {rnd.opens} to {rnd.closes}, "
                                 f"not on {today}")
    suite = report["run"]["suite"]
    if (suite["id"], suite["version"]) != (rnd.suite, rnd.suite_version):
        raise ConfigurationError(f"{path}: ran suite {suite['id']} {suite['version']}, but round '{rnd.id}' "
                                 f"assesses {rnd.suite} {rnd.suite_version}")
    if report["run"]["as_of"] != rnd.as_of.isoformat():
        raise ConfigurationError(f"{path}: judged as of {report['run']['as_of']}, but round '{rnd.id}' "
                                 f"judges as of {rnd.as_of}; re-run with --as-of {rnd.as_of}")
    if "certification" in report:
        raise ConfigurationError(f"{path}: is already a certification report; submit the run's own report")


def _file_sha256(path: Path) -> str:
    return hash_file(path)[0]


def _pause_point() -> None:
    """Fault injection for tests: announce, then wait inside the open transaction to be killed."""
    marker = os.environ.get(PAUSE_BEFORE_COMMIT)
    if marker:
        Path(marker).write_text("in transaction", encoding="utf-8")
        time.sleep(60)
