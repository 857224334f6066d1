"""The registry's tables, as SQLAlchemy 2 typed mappings (the migrations create them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Supplier(Base):
    __tablename__ = "supplier"
    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[str] = mapped_column(String(32))


class Solution(Base):
    __tablename__ = "solution"
    __table_args__ = (UniqueConstraint("supplier_id", "name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    care_settings: Mapped[list[Any]]
    capabilities: Mapped[list[Any]]
    created_at: Mapped[str] = mapped_column(String(32))


class Round(Base):
    __tablename__ = "round"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    suite: Mapped[str] = mapped_column(String(200))
    suite_source: Mapped[str] = mapped_column(String(1000))  # the id or suite file the round was opened with
    suite_version: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[dt.date] = mapped_column(Date)
    opens: Mapped[dt.date] = mapped_column(Date)
    closes: Mapped[dt.date] = mapped_column(Date)
    policy: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(32))
    closed_at: Mapped[str | None] = mapped_column(String(32))


class Submission(Base):
    """A run's canonical report as received; never updated (a re-test is a new submission)."""

    __tablename__ = "submission"
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("round.id"))
    solution_id: Mapped[int] = mapped_column(ForeignKey("solution.id"))
    report: Mapped[str] = mapped_column(Text)
    report_sha256: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    evidence_path: Mapped[str] = mapped_column(String(1000))
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    submitted_by: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[str] = mapped_column(String(32))


class Waiver(Base):
    __tablename__ = "waiver"
    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"))  # None: every supplier
    round_id: Mapped[str | None] = mapped_column(ForeignKey("round.id"))  # None: every round
    justification: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[str] = mapped_column(String(32))
    expires: Mapped[dt.date] = mapped_column(Date)  # in force up to and including this day
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[str | None] = mapped_column(String(200))  # who sees the remediation through
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class Decision(Base):
    __tablename__ = "decision"
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("round.id"))
    solution_id: Mapped[int] = mapped_column(ForeignKey("solution.id"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    assessor: Mapped[str] = mapped_column(String(200))
    reasons: Mapped[list[Any]]
    waivers: Mapped[list[Any]]
    decided_on: Mapped[dt.date] = mapped_column(Date)
    expires: Mapped[dt.date] = mapped_column(Date)
    report: Mapped[str] = mapped_column(Text)  # the certification report (signed when a key was given)
    report_sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(32))


class User(Base):
    """An account of the web workspace; the password only as an argon2 hash."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | assessor | admin
    password_hash: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[str] = mapped_column(String(32))
    disabled_at: Mapped[str | None] = mapped_column(String(32))


class Witness(Base):
    """An assessor's answer to a witnessed or manual step of one submission; never updated."""

    __tablename__ = "witness"
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id"))
    rule_id: Mapped[str] = mapped_column(String(100))
    answer: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text)
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))  # the uploaded file, stored by this hash
    evidence_size: Mapped[int | None] = mapped_column(Integer)
    evidence_type: Mapped[str | None] = mapped_column(String(100))
    answered_by: Mapped[str] = mapped_column(String(200))
    answered_at: Mapped[str] = mapped_column(String(32))


class AuditEntry(Base):
    """Append-only; each entry's hash covers its contents and the previous entry's hash."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditSeal(Base):
    """A chain head signed with the team key (at each publish); append-only, and recorded in the chain."""

    __tablename__ = "audit_seal"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # the last entry the signature covers
    head: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # the signed seal, canonical JSON
    key_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[str] = mapped_column(String(32))
