"""SQLAlchemy ORM models of the experiment database. Private to the store package.

The schema itself is created by the Alembic migrations in ``migrations/versions``; a test checks
that these models and the migrated database agree.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Double, ForeignKey, Index, Integer, MetaData,
                        String, Text, UniqueConstraint)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC, read back as timezone-aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class JSONText(TypeDecorator[Any]):
    """JSON kept as text, the way SQLite keeps it: PostgreSQL's ``json`` type refuses the NaN and
    infinities that configs may hold. Reads values a ``json`` column already decoded as they are."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return json.dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if isinstance(value, str) else value


#: The type of every JSON column: SQLite's JSON, text on PostgreSQL (see :class:`JSONText`).
JSON_COLUMN = JSON().with_variant(JSONText(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON_COLUMN, float: Double}


class Environment(Base):
    """The environment capsule an experiment version was created in."""

    __tablename__ = "environment"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime]
    git_sha: Mapped[str | None] = mapped_column(String(40))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    python: Mapped[str] = mapped_column(String(64))
    packages: Mapped[dict[str, Any]]
    host: Mapped[str] = mapped_column(String(255))
    cpu: Mapped[str | None] = mapped_column(String(255))
    cpu_count: Mapped[int | None]
    platform: Mapped[str] = mapped_column(String(255))


class Experiment(Base):
    __tablename__ = "experiment"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int]
    desc: Mapped[str] = mapped_column(Text)
    root_seed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    config_dir: Mapped[str] = mapped_column(Text)
    files: Mapped[dict[str, Any]]
    environment_id: Mapped[int] = mapped_column(ForeignKey("environment.id"))


class Trial(Base):
    __tablename__ = "trial"
    __table_args__ = (UniqueConstraint("experiment_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiment.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    group_name: Mapped[str | None] = mapped_column(String(255))
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64))
    sweep_point: Mapped[dict[str, Any] | None]
    info: Mapped[dict[str, Any] | None]


class Param(Base):
    """One leaf of a trial's resolved config; see :mod:`experiment.store.params` for kinds."""

    __tablename__ = "param"
    __table_args__ = {"sqlite_with_rowid": False}
    trial_id: Mapped[int] = mapped_column(ForeignKey("trial.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    num_value: Mapped[float | None]
    text_value: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    __tablename__ = "run"
    __table_args__ = (UniqueConstraint("experiment_id", "config_hash", "repeat"),
                      Index("ix_run_experiment_id_status", "experiment_id", "status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiment.id", ondelete="CASCADE"))
    trial_id: Mapped[int] = mapped_column(ForeignKey("trial.id", ondelete="CASCADE"), index=True)
    config_hash: Mapped[str] = mapped_column(String(64))
    repeat: Mapped[int]
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    output_dir: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_type: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_traceback: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]
    last_epoch: Mapped[int | None]
    extended_epochs: Mapped[int | None]  # the epochs an extension trains to (NULL: the trial config's)
    stage: Mapped[str | None] = mapped_column(String(255))  # the stage of a staged trial (settings.stages)
    upstream_run_id: Mapped[int | None]  # the run whose checkpoint this stage starts from (any experiment)


class Attempt(Base):
    __tablename__ = "attempt"
    __table_args__ = (UniqueConstraint("run_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    number: Mapped[int]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    exit_reason: Mapped[str | None] = mapped_column(String(16))
    error_type: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    peak_rss_mb: Mapped[float | None]


class MetricKey(Base):
    __tablename__ = "metric_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class Metric(Base):
    """One value per (run, epoch, key); NULL means NaN. No rowid: the primary key is the b-tree, ordered
    so that one epoch's batch is contiguous on disk (one page write per epoch, not one per key)."""

    __tablename__ = "metric"
    __table_args__ = {"sqlite_with_rowid": False}
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("metric_key.id"), primary_key=True)
    value: Mapped[float | None]


class Summary(Base):
    """Final and best values of a run; NULL means NaN."""

    __tablename__ = "summary"
    __table_args__ = {"sqlite_with_rowid": False}
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[float | None]


class Artifact(Base):
    __tablename__ = "artifact"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
