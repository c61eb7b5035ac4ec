"""``run.stage`` and ``run.upstream_run_id``: the stage of a staged trial a run belongs to, and the
run whose checkpoint it starts from (settings.stages). The upstream may be a run of another
experiment in the same database; the column is a plain integer (no foreign key: SQLite would
rebuild the run table to add one, and its dependants' cascades would fire).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("run", sa.Column("stage", sa.String(255), nullable=True))
    op.add_column("run", sa.Column("upstream_run_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_column("upstream_run_id")
        batch.drop_column("stage")
