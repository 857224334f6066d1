"""Opening a registry: engine settings per database, and migrating it to the current schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from harness.errors import ConfigurationError

DEFAULT_URL = "sqlite:///assure.db"
MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS = 30_000
READ_ONLY = "care_assure_read_only"  # execution option: a session that only reads never takes the write lock


def database_url(given: str | None) -> str:
    return given or os.environ.get("CARE_ASSURE_DB") or DEFAULT_URL


def _sqlite_settings(engine: Engine) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE: writers queue instead of failing or deadlocking."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below start transactions
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # readers see the last committed state (WAL) without queueing behind a writer
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def open_engine(url: str) -> Engine:
    """An engine on ``url`` with the schema migrated to head."""
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise ConfigurationError(f"registry database '{_safe(url)}': {exc}") from None
    if engine.dialect.name == "sqlite":
        _sqlite_settings(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    try:
        with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current != head:  # only then take the write lock
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
    except OperationalError as exc:
        raise ConfigurationError(f"registry database '{_safe(url)}' cannot be opened: {exc.orig}") from None
    return engine


def sessions(url: str | None = None) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """Sessions that write (one writer at a time) and sessions that only read (never waiting on it)."""
    engine = open_engine(database_url(url))
    return (sessionmaker(engine, expire_on_commit=False),
            sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False))


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
