"""Packs and rules as frozen data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from harness.results import Level


@dataclass(frozen=True, slots=True)
class Standard:
    id: str
    title: str
    version: str
    url: str | None = None
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    pack: str
    title: str
    level: Level
    standard: Standard
    clause: str
    applies_to: frozenset[str]
    effective_from: dt.date
    effective_until: dt.date | None
    resources: tuple[str, ...]
    check: dict[str, Any]
    remediation: str
    where: str | None = None
    select: str | None = None
    when_absent: str = "fail"
    aliases: tuple[str, ...] = ()
    note: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def kind(self) -> str:
        return str(self.check["kind"])

    def in_force(self, as_of: dt.date) -> bool:
        if self.effective_from > as_of:
            return False
        return self.effective_until is None or as_of < self.effective_until


@dataclass(frozen=True, slots=True)
class Pack:
    id: str
    title: str
    version: str
    status: str
    standards: tuple[Standard, ...]
    rules: tuple[Rule, ...] = field(default=())
    path: str = ""
    sha256: str = ""
    description: str = ""
    not_encoded: tuple[dict[str, str], ...] = ()  # clauses left without a rule, with why
