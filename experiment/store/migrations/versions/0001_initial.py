"""The initial experiment database: environment, experiment, trial, param, run, attempt,
metric_key, metric, summary and artifact. JSON columns are text on PostgreSQL, whose ``json`` type
refuses NaN and infinities.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NO_ROWID = {"sqlite_with_rowid": False}
JSON = sa.JSON().with_variant(sa.Text(), "postgresql")


def _fk(column: str, table: str, target: str, cascade: bool = True) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}",
                                   ondelete="CASCADE" if cascade else None)


def upgrade() -> None:
    op.create_table(
        "environment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("git_sha", sa.String(40), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("python", sa.String(64), nullable=False),
        sa.Column("packages", JSON, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("cpu", sa.String(255), nullable=True),
        sa.Column("cpu_count", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_environment"),
    )
    op.create_table(
        "experiment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("desc", sa.Text(), nullable=False),
        sa.Column("root_seed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("config_dir", sa.Text(), nullable=False),
        sa.Column("files", JSON, nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiment"),
        _fk("environment_id", "experiment", "environment", cascade=False),
        sa.UniqueConstraint("name", "version", name="uq_experiment_name_version"),
    )
    op.create_table(
        "trial",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("group_name", sa.String(255), nullable=True),
        sa.Column("config", JSON, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("sweep_point", JSON, nullable=True),
        sa.Column("info", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trial"),
        _fk("experiment_id", "trial", "experiment"),
        sa.UniqueConstraint("experiment_id", "name", name="uq_trial_experiment_id_name"),
    )
    op.create_table(
        "param",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("num_value", sa.Double(), nullable=True),
        sa.Column("text_value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("trial_id", "key", name="pk_param"),
        _fk("trial_id", "param", "trial"),
        **NO_ROWID,
    )
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("output_dir", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_traceback", sa.Text(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("last_epoch", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_run"),
        _fk("experiment_id", "run", "experiment"),
        _fk("trial_id", "run", "trial"),
        sa.UniqueConstraint("experiment_id", "config_hash", "repeat", name="uq_run_experiment_id_config_hash_repeat"),
    )
    op.create_index("ix_run_experiment_id_status", "run", ["experiment_id", "status"])
    op.create_index("ix_run_trial_id", "run", ["trial_id"])
    op.create_table(
        "attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("exit_reason", sa.String(16), nullable=True),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("peak_rss_mb", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_attempt"),
        _fk("run_id", "attempt", "run"),
        sa.UniqueConstraint("run_id", "number", name="uq_attempt_run_id_number"),
    )
    op.create_table(
        "metric_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_key"),
        sa.UniqueConstraint("name", name="uq_metric_key_name"),
    )
    op.create_table(
        "metric",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "epoch", "key_id", name="pk_metric"),
        _fk("run_id", "metric", "run"),
        _fk("key_id", "metric", "metric_key", cascade=False),
        **NO_ROWID,
    )
    op.create_table(
        "summary",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_summary"),
        _fk("run_id", "summary", "run"),
        **NO_ROWID,
    )
    op.create_table(
        "artifact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifact"),
        _fk("run_id", "artifact", "run"),
    )
    op.create_index("ix_artifact_run_id", "artifact", ["run_id"])


def downgrade() -> None:
    for index, table in (("ix_artifact_run_id", "artifact"), ("ix_run_trial_id", "run"),
                         ("ix_run_experiment_id_status", "run")):
        op.drop_index(index, table_name=table)
    for table in ("artifact", "summary", "metric", "metric_key", "attempt", "run", "param", "trial",
                  "experiment", "environment"):
        op.drop_table(table)
