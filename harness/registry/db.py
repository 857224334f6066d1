"""Opening a registry: engine settings per database, and migrating it to the current schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from harness.errors import ConfigurationError

DEFAULT_URL = "sqlite:///assure.db"
MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS = 30_000


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
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise ConfigurationError(f"registry database '{_safe(url)}' cannot be opened: {exc.orig}") from None
    return engine


def sessions(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(open_engine(database_url(url)), expire_on_commit=False)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
