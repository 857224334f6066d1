"""An insider with the registry's database: every edit is refused, or named by `audit verify`.

Each test builds a real round (two suppliers, signed decisions, a publish) on SQLite and on a
real PostgreSQL server, then changes the database behind the registry's back the way the
issue's reviewer did, and checks that the change is refused by the database, or found by
`audit verify`, and that nothing the signed certifications do not say reaches the list.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DatabaseError

from harness.registry.audit import entry_hash
from tests.test_registry import TODAY, _open_round, cli, db, exports, keys, postgres_url

__all__ = ["db", "exports", "keys", "postgres_url"]  # fixtures this module borrows


def _round(db: str, exports: dict[str, Path], keys: dict[str, Path], tmp_path: Path) -> Path:
    """goodco passes, badco fails; both decisions signed; the list published once (a signed head)."""
    store = tmp_path / "store"
    _open_round(db)
    cli("supplier", "add", "goodco", "--name", "Good Care", "--solution", "GoodRecord", "--solution-version", "4.1",
        "--db", db)
    cli("supplier", "add", "badco", "--name", "Bad Care", "--solution", "BadRecord", "--solution-version", "2.0",
        "--db", db)
    for supplier, export in (("goodco", exports["good"]), ("badco", exports["bad"])):
        cli("round", "run", "R1", "--supplier", supplier, "--export", export, "--out", tmp_path / f"run-{supplier}",
            "--db", db, "--store", store)
    cli("round", "decide", "R1", "--supplier", "goodco", "--signing-key", keys["private"], "--db", db)
    cli("round", "decide", "R1", "--supplier", "badco", "--signing-key", keys["private"], "--db", db, code=1)
    cli("list", "publish", "--out", tmp_path / "pub", "--signing-key", keys["private"], "--db", db, "--store", store)
    return store


def _sql(db: str, *statements: str, bypass: bool = False) -> None:
    """Run statements as an insider; with ``bypass``, first switch off the append-only triggers."""
    engine = create_engine(db)
    try:
        with engine.begin() as conn:
            if bypass:
                _drop_triggers(conn, engine.dialect.name)
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def _drop_triggers(conn: Any, dialect: str) -> None:
    if dialect == "sqlite":
        for (name,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all():
            conn.execute(text(f"DROP TRIGGER {name}"))
    else:
        for table in ("submission", "decision", "audit_log", "audit_seal"):
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def _verify(db: str, keys: dict[str, Path], store: Path, *extra: str | Path, code: int = 1) -> str:
    return str(cli("audit", "verify", "--db", db, "--store", store, "--public-key", keys["public"], *extra,
                   code=code).output)


def _forecast(db: str, keys: dict[str, Path]) -> list[dict[str, Any]]:
    res = cli("list", "forecast", "--as-of", str(TODAY), "--public-key", keys["public"], "--json", "--db", db,
              code=None)
    return list(json.loads(res.output))


def test_upserts_and_truncation_are_refused(db: str, exports: dict[str, Path], keys: dict[str, Path],
                                            tmp_path: Path) -> None:
    _round(db, exports, keys, tmp_path)
    if db.startswith("sqlite"):
        attempts = ["INSERT OR REPLACE INTO decision SELECT id, round_id, solution_id, submission_id, outcome, "
                    "assessor, reasons, waivers, decided_on, '2099-12-31', report, report_sha256, key_id, created_at "
                    "FROM decision WHERE id = 1",
                    "REPLACE INTO audit_log SELECT seq, at, 'x', action, subject, detail, prev_hash, hash "
                    "FROM audit_log WHERE seq = 1",
                    "INSERT INTO decision SELECT * FROM decision WHERE id = 1 "
                    "ON CONFLICT(id) DO UPDATE SET expires = '2099-12-31'"]
    else:
        attempts = ["INSERT INTO decision SELECT * FROM decision WHERE id = 1 "
                    "ON CONFLICT (id) DO UPDATE SET expires = '2099-12-31'",
                    "TRUNCATE decision", "TRUNCATE audit_log CASCADE", "TRUNCATE audit_seal",
                    "DELETE FROM audit_seal"]
    for statement in attempts:
        with pytest.raises(DatabaseError, match="append-only"):
            _sql(db, statement)
    assert "audit log intact" in _verify(db, keys, tmp_path / "store", code=0)


def test_a_later_expiry_or_a_swapped_solution_is_named_and_never_listed(
        db: str, exports: dict[str, Path], keys: dict[str, Path], tmp_path: Path) -> None:
    store = _round(db, exports, keys, tmp_path)
    signed_expiry = _forecast(db, keys)[0]["expires"]
    # The insider extends goodco's listing to 2099, and files goodco's passing decision under badco.
    _sql(db, "UPDATE decision SET expires = '2099-12-31' WHERE id = 1",
         "UPDATE decision SET solution_id = 2 WHERE id = 1", bypass=True)
    output = _verify(db, keys, store)
    assert "decision 1: expires is \"2099-12-31\" in the table but audit entry" in output
    assert "decision 1: solution_id is 2 in the table" in output
    assert "its signed certification is for goodco GoodRecord 4.1 in round R1, but the row says badco" in output
    res = cli("list", "publish", "--out", tmp_path / "again", "--signing-key", keys["private"], "--db", db,
              "--store", store, code=2)
    assert "audit log does not verify" in res.output
    # What the list would say is still only what the signatures say.
    assert [(f["supplier"], f["solution"], f["expires"]) for f in _forecast(db, keys)] == [
        ("goodco", "GoodRecord 4.1", signed_expiry)]


def test_a_forged_decision_with_a_recomputed_chain_entry_is_never_listed(
        db: str, exports: dict[str, Path], keys: dict[str, Path], tmp_path: Path) -> None:
    store = _round(db, exports, keys, tmp_path)
    engine = create_engine(db)
    with engine.begin() as conn:
        good = conn.execute(text("SELECT * FROM decision WHERE id = 1")).mappings().one()
        report = json.loads(good["report"])
        report["certification"].update(supplier="badco", solution="BadRecord 2.0", solution_name="BadRecord",
                                       solution_version="2.0")  # the team's signature no longer covers it
        forged = json.dumps(report)
        last = conn.execute(text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).one()
        from harness.reports.signing import sha256_hex

        row = {"id": 3, "round_id": "R1", "solution_id": 2, "submission_id": 2, "outcome": "pass",
               "assessor": "assessor-1", "reasons": [], "waivers": [], "decided_on": str(TODAY),
               "expires": "2099-12-31", "report_text_sha256": sha256_hex(forged.encode()),
               "report_sha256": sha256_hex(forged.encode()), "key_id": good["key_id"], "created_at": "x"}
        conn.execute(text("INSERT INTO decision VALUES (3, 'R1', 2, 2, 'pass', 'assessor-1', '[]', '[]', :on, "
                          "'2099-12-31', :report, :sha, :key, 'x')"),
                     {"on": TODAY, "report": forged, "sha": row["report_sha256"], "key": good["key_id"]})
        detail = {"id": 3, "table": "decision", "row": row}
        at = "2026-12-01T00:00:00+00:00"
        conn.execute(text("INSERT INTO audit_log VALUES (:seq, :at, 'assessor-1', 'decision.create', 'R1/badco', "
                          ":detail, :prev, :hash)"),
                     {"seq": last.seq + 1, "at": at, "detail": json.dumps(detail), "prev": last.hash,
                      "hash": entry_hash(last.seq + 1, at, "assessor-1", "decision.create", "R1/badco", detail,
                                         last.hash)})
    engine.dispose()
    output = _verify(db, keys, store)
    assert "decision 3: its certification does not verify with the team key" in output
    # Without the key, the chain and rows hold — which is why nothing is listed without the signature.
    assert "audit log intact" in cli("audit", "verify", "--db", db, "--store", store, code=0).output
    assert [f["supplier"] for f in _forecast(db, keys)] == ["goodco"]


def test_a_cut_tail_is_found_against_the_signed_head(db: str, exports: dict[str, Path], keys: dict[str, Path],
                                                     tmp_path: Path) -> None:
    store = _round(db, exports, keys, tmp_path)
    sealed = json.loads((tmp_path / "pub" / "audit-seal.json").read_text(encoding="utf-8"))
    cli("waiver", "grant", "DSCR-CP-001", "--supplier", "badco", "--justification", "migration",
        "--expires", str(TODAY + dt.timedelta(days=30)), "--db", db)
    assert "audit log intact" in _verify(db, keys, store, code=0)
    # Cut the tail back to before badco's decision: the signed head kept in the registry names it ...
    cut = sealed["seq"] - 1
    _sql(db, f"DELETE FROM audit_log WHERE seq > {cut}", "DELETE FROM waiver", "DELETE FROM decision WHERE id = 2",
         bypass=True)
    output = _verify(db, keys, store)
    assert f"covers entries up to {sealed['seq']}, but the log has only {cut} verifiable entries" in output
    # ... and with the registry's own seals deleted too, the published seal still does.
    _sql(db, "DELETE FROM audit_seal", bypass=True)
    output = _verify(db, keys, store, "--seal", tmp_path / "pub" / "audit-seal.json")
    assert "the signed head given with --seal covers entries up to" in output


def test_an_overwritten_evidence_file_is_named(db: str, exports: dict[str, Path], keys: dict[str, Path],
                                                tmp_path: Path) -> None:
    store = _round(db, exports, keys, tmp_path)
    bundle = next((store / "R1").glob("goodco-*.zip"))
    bundle.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    output = _verify(db, keys, store)
    assert f"submission 1: evidence bundle {bundle} no longer matches its SHA-256" in output
    bundle.unlink()
    assert f"submission 1: evidence bundle {bundle} is missing" in _verify(db, keys, store)


def test_read_only_commands_do_not_wait_for_a_writer(tmp_path: Path, exports: dict[str, Path],
                                                     keys: dict[str, Path]) -> None:
    db_file = tmp_path / "a.db"
    db = f"sqlite:///{db_file}"
    store = _round(db, exports, keys, tmp_path)
    writer = sqlite3.connect(db_file, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock (busy timeout is 30 s)
    try:
        for args in (("audit", "verify"), ("round", "list"), ("waiver", "list"), ("audit", "log")):
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--db", db,
                                   *(("--store", str(store)) if args[1] == "verify" else ())],
                                  capture_output=True, text=True, timeout=120, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert time.monotonic() - started < 15, f"{args} waited for the writer"
        # A writer, by contrast, reports the lock as a clear error rather than a traceback.
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_behind(tmp_path: Path, exports: dict[str, Path],
                                                                keys: dict[str, Path]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    store = _round(db, exports, keys, tmp_path)
    before = sorted(store.rglob("*"))

    run = tmp_path / "run-big"  # the run's folder with a large attachment: its bundle outgrows the limit
    shutil.copytree(tmp_path / "run-goodco", run)
    (run / "attachment.bin").write_bytes(os.urandom(300_000))

    def submit_with_file_limit(run: Path, limit: int) -> str:
        def small_files() -> None:  # the kernel refuses writes past the limit (EFBIG), as a full disk would
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        proc = subprocess.run([sys.executable, "-m", "harness.cli", "round", "submit", "R1",
                               str(run), "--supplier", "goodco", "--db", db, "--store", str(store)],
                              capture_output=True, text=True, timeout=120, preexec_fn=small_files, check=False,
                              env={**os.environ, "CARE_ASSURE_ACTOR": "assessor-1"})
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert sorted(store.rglob("*")) == before  # no half-written bundle left
        return proc.stderr

    # The bundle cannot be written: nothing reaches the database.
    assert "cannot write the evidence bundle" in submit_with_file_limit(run, 128 * 1024)
    # The bundle fits but the database cannot grow: the transaction rolls back and the bundle goes.
    assert "the registry database could not be written, nothing was changed" in submit_with_file_limit(
        tmp_path / "run-goodco", 64 * 1024)
    assert "audit log intact" in _verify(db, keys, store, code=0)
    assert "submission 3" not in _verify(db, keys, store, code=0)
