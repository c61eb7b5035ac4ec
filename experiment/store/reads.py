"""Read queries of ``SQLStore``: each takes an open connection and returns records or tuples."""
from __future__ import annotations

import math
from typing import Any, Iterable

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Connection

from experiment.store.base import AttemptRecord, RunRecord, RunStatus, TrialRecord
from experiment.store.models import Artifact, Attempt, Metric, MetricKey, Param, Run, Summary, Trial
from experiment.store.params import param_value
from experiment.store.records import record, run_record


def _float(value: float | None) -> float:
    """NULL is how NaN is stored."""
    return math.nan if value is None else value


def run_records(conn: Connection, *where: ColumnElement[bool]) -> list[RunRecord]:
    query = (select(*Run.__table__.c, Trial.name.label("trial_name")).join(Trial, Trial.id == Run.trial_id)
             .where(*where).order_by(Run.id))
    return [run_record(row) for row in conn.execute(query).mappings()]


def runs(conn: Connection, experiment_id: int, statuses: Iterable[RunStatus] | None) -> list[RunRecord]:
    where = [Run.experiment_id == experiment_id]
    if statuses is not None:
        where.append(Run.status.in_([RunStatus(s).value for s in statuses]))
    return run_records(conn, *where)


def trials(conn: Connection, experiment_id: int) -> list[TrialRecord]:
    query = select(Trial.__table__).where(Trial.experiment_id == experiment_id).order_by(Trial.id)
    return [record(TrialRecord, row) for row in conn.execute(query).mappings()]


def attempts(conn: Connection, run_id: int) -> list[AttemptRecord]:
    query = select(Attempt.__table__).where(Attempt.run_id == run_id).order_by(Attempt.number)
    return [record(AttemptRecord, row) for row in conn.execute(query).mappings()]


def params(conn: Connection, experiment_id: int) -> list[tuple[int, str, Any]]:
    query = (select(Param.trial_id, Param.key, Param.kind, Param.num_value, Param.text_value)
             .join(Trial, Trial.id == Param.trial_id).where(Trial.experiment_id == experiment_id)
             .order_by(Param.trial_id, Param.key))
    return [(trial_id, key, param_value(kind, num, text)) for trial_id, key, kind, num, text in conn.execute(query)]


def metrics(conn: Connection, experiment_id: int, keys: Iterable[str] | None,
            run_ids: Iterable[int] | None) -> list[tuple[int, str, int, float]]:
    query = (select(Metric.run_id, MetricKey.name, Metric.epoch, Metric.value)
             .join(MetricKey, MetricKey.id == Metric.key_id).join(Run, Run.id == Metric.run_id)
             .where(Run.experiment_id == experiment_id).order_by(Metric.run_id, MetricKey.name, Metric.epoch))
    if keys is not None:
        query = query.where(MetricKey.name.in_(list(keys)))
    if run_ids is not None:
        query = query.where(Metric.run_id.in_(list(run_ids)))
    return [(run_id, key, epoch, _float(value)) for run_id, key, epoch, value in conn.execute(query)]


def summaries(conn: Connection, experiment_id: int) -> list[tuple[int, str, float]]:
    query = (select(Summary.run_id, Summary.key, Summary.value).join(Run, Run.id == Summary.run_id)
             .where(Run.experiment_id == experiment_id).order_by(Summary.run_id, Summary.key))
    return [(run_id, key, _float(value)) for run_id, key, value in conn.execute(query)]


def artifacts(conn: Connection, run_id: int) -> list[tuple[str, str, str, int]]:
    query = (select(Artifact.kind, Artifact.path, Artifact.sha256, Artifact.size_bytes)
             .where(Artifact.run_id == run_id).order_by(Artifact.id))
    return [tuple(row) for row in conn.execute(query)]


def experiment_artifacts(conn: Connection, experiment_id: int) -> list[tuple[int, str, str, str, int]]:
    query = (select(Artifact.run_id, Artifact.kind, Artifact.path, Artifact.sha256, Artifact.size_bytes)
             .join(Run, Run.id == Artifact.run_id).where(Run.experiment_id == experiment_id)
             .order_by(Artifact.run_id, Artifact.id))
    return [tuple(row) for row in conn.execute(query)]


def status_counts(conn: Connection, experiment_id: int) -> dict[str, dict[str, int]]:
    query = (select(Trial.name, Run.status, func.count()).join(Trial, Trial.id == Run.trial_id)
             .where(Run.experiment_id == experiment_id).group_by(Trial.id, Trial.name, Run.status)
             .order_by(Trial.id, Run.status))
    counts: dict[str, dict[str, int]] = {}
    for name, status, count in conn.execute(query):
        counts.setdefault(name, {})[status] = count
    return counts
