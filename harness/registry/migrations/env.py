"""Alembic environment: runs on the connection the registry hands over (see ``harness.registry.db``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from harness.registry.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":  # one migrator at a time
        connection.execute(text("SELECT pg_advisory_xact_lock(8785)"))
    context.run_migrations()
