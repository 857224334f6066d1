"""Attestations: recorded answers, with evidence, for requirements no data can show.

A supplier (or the assurance team) answers each ``attestation`` rule in a YAML file::

    attestations:
      DSCR-ATT-CSO-001:
        answer: yes
        by: A. Person, Clinical Safety Officer
        date: 2026-10-01
        evidence: [safety/clinical-safety-case.pdf]   # relative to this file
        statement: optional words of the supplier

Evidence files are hashed (SHA-256) into the report's inputs, so a signed report pins them.
An unanswered rule is ``manual`` (not met); ``no`` is a failure; ``yes`` without the evidence
the rule asks for stays ``manual``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigurationError, Problem
from harness.results import InputFile
from harness.yamlsource import load_yaml

ENV = "CARE_ASSURE_ATTESTATIONS"

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["attestations"],
    "properties": {"attestations": {"type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": False, "required": ["answer", "by", "date"],
        "properties": {
            "answer": {"type": "boolean"}, "by": {"type": "string", "minLength": 1},
            "date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            "evidence": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "statement": {"type": "string"},
        }}}},
}


@dataclass(frozen=True, slots=True)
class Answer:
    rule: str
    answer: bool
    by: str
    date: str
    evidence: tuple[InputFile, ...]
    statement: str
    line: int | None


@dataclass(frozen=True, slots=True)
class Attestations:
    source: str
    answers: dict[str, Answer]
    inputs: tuple[InputFile, ...]
    files: tuple[tuple[str, Path], ...] = ()  # each input as the report names it, and where it is


def _hash(path: Path, shown: str) -> InputFile:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return InputFile(shown, digest, path.stat().st_size)


def _validator() -> Any:
    import jsonschema  # noqa: PLC0415 - loaded only when an attestations file is read

    return jsonschema.Draft202012Validator(SCHEMA)


def load_attestations(path: Path) -> Attestations:
    """Read and check an attestations file; every problem names the file and line."""
    if not path.is_file():
        raise ConfigurationError(Problem("attestations file does not exist", str(path)))
    doc = load_yaml(path)
    problems = [Problem(f"{'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}", str(path),
                        doc.line_of(tuple(e.absolute_path)))
                for e in _validator().iter_errors(doc.data)]
    if problems:
        raise ConfigurationError(problems)
    answers, inputs = {}, {path.name: _hash(path, path.name)}
    files = {path.name: path}
    for rule_id, entry in doc.data["attestations"].items():
        evidence = []
        for i, name in enumerate(entry.get("evidence", [])):
            file = (path.parent / name).resolve()
            if not file.is_file() or path.parent.resolve() not in file.parents:
                problems.append(Problem(f"[{rule_id}] evidence '{name}' is not a file beside the attestations",
                                        str(path), doc.line_of(("attestations", rule_id, "evidence", i))))
                continue
            evidence.append(_hash(file, f"{path.name}:{name}"))
            files[f"{path.name}:{name}"] = file
        try:
            dt.date.fromisoformat(entry["date"])
        except ValueError:
            problems.append(Problem(f"[{rule_id}] date '{entry['date']}' is not a date", str(path),
                                    doc.line_of(("attestations", rule_id, "date"))))
        answers[rule_id] = Answer(rule_id, entry["answer"], entry["by"], entry["date"], tuple(evidence),
                                  entry.get("statement", ""), doc.line_of(("attestations", rule_id)))
        inputs.update((e.path, e) for e in evidence)
    if problems:
        raise ConfigurationError(problems)
    return Attestations(str(path), answers, tuple(inputs.values()), tuple(files.items()))


def attestation_inputs(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's inputs that are an attestations file or the evidence it cites (``answers.yaml:a.pdf``)."""
    sources = {i["path"].split(":", 1)[0] for i in inputs if re.search(r"\.ya?ml:", i["path"])}
    return [i for i in inputs if i["path"].split(":", 1)[0] in sources]


def kept_name(shown: str) -> str:
    """Where a run folder keeps an attestation input: ``a.yaml:evidence/x.pdf`` → ``attestations/evidence/x.pdf``."""
    return "attestations/" + shown.split(":", 1)[-1]


def from_environment_or(path: Path | None) -> Attestations | None:
    """The given file, else the one named by $CARE_ASSURE_ATTESTATIONS, else none."""
    chosen = path or (Path(os.environ[ENV]) if os.environ.get(ENV) else None)
    return load_attestations(chosen) if chosen else None
