"""A registry as the assurance team has it mid-round, for the web workspace tests.

Two suppliers ran asl-dscr-core through `round run`: one from an export with a failing NHS
number and an unanswered clinical-safety attestation (a step to witness), one against the
reference API with a defect whose findings cite evidence exchanges. Three accounts exist.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from fixtures.export_generator import Generator, write_ndjson
from fixtures.reference_server import TOKEN, ReferenceApi, ReferenceServer
from tests.helpers import personal_values

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-01"
PASSWORDS = {"admin": "admin-password-123", "assessor": "assessor-password-123", "viewer": "viewer-password-123"}
UNANSWERED = "DSCR-ATT-CSO-001"  # the attestation left out: a manual step for the assessor


@dataclass
class Populated:
    db: str
    store: Path
    keys: dict[str, Path]
    submissions: dict[str, int]  # supplier handle -> its submission
    personal: set[str]  # what the API supplier's server holds about people
    root: Path


def cli(*args: str | Path, actor: str = "setup") -> Any:
    from harness.cli import app

    res = CliRunner().invoke(app, [str(a) for a in args],
                             env={"CARE_ASSURE_ACTOR": actor, "COLUMNS": "200", "REF_TOKEN": TOKEN,
                                  **{f"PW_{k.upper()}": v for k, v in PASSWORDS.items()}})
    assert res.exit_code in (0, 1), res.output
    return res


def _attestations(root: Path) -> Path:
    source = ROOT / "fixtures" / "attestations"
    doc = yaml.safe_load((source / "attestations.yaml").read_text(encoding="utf-8"))
    del doc["attestations"][UNANSWERED]
    shutil.copytree(source / "evidence", root / "att" / "evidence")
    path = root / "att" / "attestations.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def populate(root: Path) -> Populated:
    db, store = f"sqlite:///{root / 'assure.db'}", root / "store"
    common = ("--db", db)
    cli("keys", "generate", "--out", root / "keys", "--name", "team")
    keys = {"private": root / "keys" / "team.key", "public": root / "keys" / "team.pub"}
    for user, role in (("admin", "admin"), ("assessor", "assessor"), ("viewer", "viewer")):
        cli("users", "add", user, "--role", role, "--password-env", f"PW_{user.upper()}", *common)
    cli("round", "open", "R1", "--suite", "asl-dscr-core", "--as-of", AS_OF, "--opens", "2026-01-01",
        "--closes", "2099-12-31", *common)
    cli("supplier", "add", "expco", "--name", "Export Care Ltd", "--solution", "ExpCare", "--solution-version", "2.1",
        "--care-setting", "residential", "--capability", "care-planning", *common)
    cli("supplier", "add", "apico", "--name", "API Care Ltd", "--solution", "ApiCare", "--solution-version", "5.0",
        "--care-setting", "domiciliary", "--capability", "care-planning", *common)
    export = root / "export"
    write_ndjson(Generator(10, seed=3, defects=("nhs-bad-checksum",)).resources(), export)
    attestations = _attestations(root)
    cli("round", "run", "R1", "--supplier", "expco", "--export", export, "--attestations", attestations,
        "--out", root / "run-expco", "--store", store, *common)
    app = ReferenceApi(residents=5, defects=["no-auth"])
    with ReferenceServer(app) as server:
        cli("round", "run", "R1", "--supplier", "apico", "--api", server.url, "--token-env", "REF_TOKEN",
            "--allow-insecure-local", "--attestations", attestations, "--out", root / "run-apico", "--store", store,
            *common)
    os.environ.pop("REF_TOKEN", None)
    return Populated(db, store, keys, {"expco": 1, "apico": 2}, personal_values(app), root)
