"""Accounts for the web workspace, assessors' witness answers, and a waiver's owner and revoke reason.

Witness answers are append-only like submissions (a later answer supersedes an earlier one);
accounts change only through the registry (role, password, disabled), each change audited.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("disabled_at", sa.String(32), nullable=True),
    )
    op.create_table(
        "witness",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submission.id"), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("answer", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("evidence_sha256", sa.String(64), nullable=True),
        sa.Column("evidence_size", sa.Integer(), nullable=True),
        sa.Column("evidence_type", sa.String(100), nullable=True),
        sa.Column("answered_by", sa.String(200), nullable=False),
        sa.Column("answered_at", sa.String(32), nullable=False),
    )
    with op.batch_alter_table("waiver") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("revoke_reason", sa.Text(), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER witness_no_{event.lower()} BEFORE {event} ON witness "
                       "BEGIN SELECT RAISE(ABORT, 'witness rows are append-only'); END")
        op.execute("CREATE TRIGGER witness_no_replace BEFORE INSERT ON witness "
                   "WHEN EXISTS (SELECT 1 FROM witness WHERE id = NEW.id) "
                   "BEGIN SELECT RAISE(ABORT, 'witness rows are append-only'); END")
    elif dialect == "postgresql":
        op.execute("CREATE TRIGGER witness_append_only BEFORE UPDATE OR DELETE ON witness "
                   "FOR EACH ROW EXECUTE FUNCTION care_assure_append_only()")
        op.execute("CREATE TRIGGER witness_no_truncate BEFORE TRUNCATE ON witness "
                   "FOR EACH STATEMENT EXECUTE FUNCTION care_assure_append_only()")


def downgrade() -> None:
    with op.batch_alter_table("waiver") as batch:
        batch.drop_column("revoke_reason")
        batch.drop_column("owner")
    op.drop_table("witness")
    op.drop_table("app_user")
