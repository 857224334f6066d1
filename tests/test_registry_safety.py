"""The registry under stress: a submit killed mid-transaction, concurrent submits, schema drift."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from harness.registry.db import open_engine
from harness.registry.models import Base
from harness.registry.service import PAUSE_BEFORE_COMMIT
from tests.helpers import reference_export as make_export

TODAY = dt.date.today()


def care_assure(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})


def run_ok(*args: str | Path) -> str:
    proc = care_assure(*args)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def round_with_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """A registry with an open round, four suppliers, and a run directory ready to submit."""
    base = tmp_path_factory.mktemp("registry")
    export = make_export(tmp_path_factory, 8, 11)
    run_dir = base / "run"
    run_ok("run", "asl-dscr-core", "--export", export, "--out", run_dir, "--as-of", "2026-11-01", "-q")
    return str(base), run_dir, export


def _fresh_db(base: str, name: str) -> str:
    db = f"sqlite:///{base}/{name}.db"
    run_ok("round", "open", "R1", "--suite", "asl-dscr-core", "--as-of", "2026-11-01", "--opens",
           str(TODAY - dt.timedelta(days=1)), "--closes", str(TODAY + dt.timedelta(days=1)), "--db", db)
    for i in range(4):
        run_ok("supplier", "add", f"s{i}", "--name", f"S{i}", "--solution", "X", "--solution-version", "1", "--db", db)
    return db


def _counts(db_file: str) -> tuple[int, int]:
    con = sqlite3.connect(db_file)
    try:
        return (con.execute("SELECT count(*) FROM submission").fetchone()[0],
                con.execute("SELECT count(*) FROM audit_log WHERE action = 'submission.create'").fetchone()[0])
    finally:
        con.close()


def test_a_submit_killed_mid_transaction_leaves_the_registry_consistent(
        round_with_report: tuple[str, Path, Path], tmp_path: Path) -> None:
    base, run_dir, _ = round_with_report
    db = _fresh_db(base, "crash")
    db_file = db.removeprefix("sqlite:///")
    marker = tmp_path / "in-transaction"
    proc = care_assure("round", "submit", "R1", run_dir, "--supplier", "s0", "--db", db, "--store", tmp_path / "store",
                       env={PAUSE_BEFORE_COMMIT: str(marker)})
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the submit never reached its transaction"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # rows inserted and the audit entry appended, not committed
    proc.communicate(timeout=30)
    assert _counts(db_file) == (0, 0)
    verified = run_ok("audit", "verify", "--db", db, "--store", tmp_path / "store")
    assert "audit log intact" in verified
    assert "an evidence bundle no submission refers to (left by a write that failed or was killed)" in verified
    run_ok("round", "submit", "R1", run_dir, "--supplier", "s0", "--db", db, "--store", tmp_path / "store")
    assert _counts(db_file) == (1, 1)
    assert "audit log intact" in run_ok("audit", "verify", "--db", db)


def test_kills_at_random_moments_never_leave_half_a_submission(
        round_with_report: tuple[str, Path, Path], tmp_path: Path) -> None:
    base, run_dir, _ = round_with_report
    db = _fresh_db(base, "random-kill")
    db_file = db.removeprefix("sqlite:///")
    for delay in (0.4, 0.8, 1.2, 1.6, 2.0, 2.5):
        proc = care_assure("round", "submit", "R1", run_dir, "--supplier", "s1", "--db", db,
                           "--store", tmp_path / "store")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        submissions, audited = _counts(db_file)
        assert submissions == audited  # each submission with its audit entry, or neither
    assert "audit log intact" in run_ok("audit", "verify", "--db", db)


def test_concurrent_submits_all_land_on_one_unbroken_chain(
        round_with_report: tuple[str, Path, Path], tmp_path: Path) -> None:
    base, run_dir, _ = round_with_report
    db = _fresh_db(base, "concurrent")
    procs = [care_assure("round", "submit", "R1", run_dir, "--supplier", f"s{i % 4}", "--db", db,
                         "--store", tmp_path / "store") for i in range(6)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, outputs
    assert _counts(db.removeprefix("sqlite:///")) == (6, 6)
    verified = run_ok("audit", "verify", "--db", db)
    assert "audit log intact: 15 entries" in verified  # round, 4 x (supplier, solution), 6 submissions


def test_migrations_build_exactly_the_schema_the_models_describe(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diffs == []
    # Opening again is a no-op at head.
    engine = open_engine(f"sqlite:///{tmp_path / 'm.db'}")
    engine.dispose()
    plain = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with plain.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0003"
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    plain.dispose()
