"""Signed chain heads, and append-only enforcement that upserts, REPLACE and TRUNCATE cannot get past.

SQLite's ``INSERT OR REPLACE`` deletes the old row without firing delete triggers (unless
recursive triggers are on, which a hand-opened connection does not set), so every immutable
table also refuses an insert whose primary key is already taken. PostgreSQL's row triggers do
not fire on ``TRUNCATE``, so a statement trigger refuses that too; ``ON CONFLICT DO UPDATE``
fires the existing update trigger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEYS = {"submission": "id", "decision": "id", "audit_log": "seq", "audit_seal": "id"}


def upgrade() -> None:
    op.create_table(
        "audit_seal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_seal_no_{event.lower()} BEFORE {event} ON audit_seal "
                       "BEGIN SELECT RAISE(ABORT, 'audit_seal rows are append-only'); END")
        for table, key in KEYS.items():
            op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                       f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key}) "
                       f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END")
    elif dialect == "postgresql":
        op.execute("CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON audit_seal "
                   "FOR EACH ROW EXECUTE FUNCTION care_assure_append_only()")
        for table in KEYS:
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION care_assure_append_only()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in KEYS:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.drop_table("audit_seal")
