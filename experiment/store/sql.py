"""``SQLStore``: the experiment store on SQLAlchemy (SQLite by default, PostgreSQL for clusters).

ORM rows stay in here; every public method returns frozen records or tuples. All database work
goes through :meth:`SQLStore._session`, which commits, rolls back and closes. Metric logging is
the hot path: cached ``metric_key`` ids, one prepared upsert executed over the epoch's rows and
one UPDATE of the run (``last_epoch``, ``heartbeat_at``), all in one transaction.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Iterable, Iterator

from sqlalchemy import bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from experiment.store import migrate, reads
from experiment.store.base import (CLAIMABLE, AttemptRecord, ErrorInfo, ExperimentRecord, ExperimentStore, NewRun,
                                   RunRecord, RunStatus, TrialRecord)
from experiment.store.engine import READ_OPTION, make_engine
from experiment.store.models import (Artifact, Attempt, Environment, Experiment, Metric, MetricKey, Param, Run,
                                     Summary, Trial, utcnow)
from experiment.store.params import param_rows
from experiment.store.records import attempt_record, experiment_record, trial_record

TEXT_LIMIT = 4000


def _db_float(value: float | None) -> float | None:
    """NaN is stored as NULL (SQLite would do so anyway); infinities are kept."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class SQLStore(ExperimentStore):
    """The experiment store behind a SQLAlchemy URL. Never creates tables: the parent calls
    :meth:`create` (Alembic ``upgrade``), workers open ``SQLStore(url)``."""

    def __init__(self, url: str, readonly: bool = False, check_schema: bool = True) -> None:
        migrate.require_file(url)
        self.url, self.readonly = url, readonly
        self._engine = make_engine(url, readonly=readonly)
        self._read_engine = self._engine.execution_options(**{READ_OPTION: True})
        self._key_ids: dict[str, int] = {}
        backend = self._engine.dialect.name
        if backend == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as upsert
        elif backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            raise ValueError(f"db URL must be sqlite or postgresql, got {backend}")
        table = Metric.__table__
        stmt = upsert(table)
        self._upsert_metric = stmt.on_conflict_do_update(index_elements=[table.c.run_id, table.c.key_id, table.c.epoch],
                                                         set_={"value": stmt.excluded.value})
        self._insert_keys = upsert(MetricKey.__table__).on_conflict_do_nothing(index_elements=["name"])
        epoch = bindparam("epoch")
        self._bump_run = (update(Run.__table__).where(Run.__table__.c.id == bindparam("run_id"))
                          .values(last_epoch=case((or_(Run.last_epoch.is_(None), Run.last_epoch < epoch), epoch),
                                                  else_=Run.last_epoch),
                                  heartbeat_at=bindparam("now", type_=Run.heartbeat_at.type)))
        if check_schema:
            try:
                migrate.check_schema(self._engine, url)
            except BaseException:
                self._engine.dispose()
                raise

    @classmethod
    def create(cls, url: str) -> SQLStore:
        """Parent process only: create or migrate the schema, then open the store."""
        migrate.upgrade(url)
        return cls(url)

    @contextmanager
    def _session(self, write: bool = True) -> Iterator[Session]:
        """One transaction (SQLite: ``BEGIN IMMEDIATE`` for writes): commit, or roll back, then close."""
        if write and self.readonly:
            raise PermissionError(f"store {self.url} is open read-only")
        session = Session(self._engine if write else self._read_engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # -- experiments and trials -------------------------------------------------------------
    def open_experiment(self, name: str, desc: str, root_seed: int, config_dir: str, files: dict[str, Any],
                        capsule: dict[str, Any], fresh: bool = False) -> ExperimentRecord:
        with self._session() as s:
            latest = s.scalar(select(Experiment).where(Experiment.name == name).order_by(Experiment.version.desc()))
            if latest is not None and not fresh:
                return experiment_record(latest)
            env = Environment(created_at=utcnow(), git_sha=capsule.get("git_sha"), git_dirty=capsule.get("git_dirty"),
                              python=str(capsule.get("python", "")), packages=dict(capsule.get("packages", {})),
                              host=str(capsule.get("host", "")), cpu=capsule.get("cpu"),
                              cpu_count=capsule.get("cpu_count"), platform=str(capsule.get("platform", "")))
            s.add(env)
            s.flush()
            experiment = Experiment(name=name, version=1 if latest is None else latest.version + 1, desc=desc,
                                    root_seed=root_seed, created_at=utcnow(), config_dir=str(config_dir),
                                    files=files, environment_id=env.id)
            s.add(experiment)
            s.flush()
            return experiment_record(experiment)

    def get_experiment(self, name: str, version: int | None = None) -> ExperimentRecord | None:
        query = select(Experiment).where(Experiment.name == name)
        query = query.order_by(Experiment.version.desc()) if version is None else query.where(
            Experiment.version == version)
        with self._session(write=False) as s:
            row = s.scalar(query.limit(1))
            return None if row is None else experiment_record(row)

    def list_experiments(self) -> list[ExperimentRecord]:
        with self._session(write=False) as s:
            return [experiment_record(e) for e in s.scalars(select(Experiment).order_by(Experiment.name,
                                                                                         Experiment.version))]

    def upsert_trial(self, experiment_id: int, name: str, config: dict[str, Any], config_hash: str,
                     sweep_point: dict[str, Any] | None = None, info: dict[str, Any] | None = None,
                     group_name: str | None = None) -> TrialRecord:
        with self._session() as s:
            trial = s.scalar(select(Trial).where(Trial.experiment_id == experiment_id, Trial.name == name))
            new_config = trial is None or trial.config_hash != config_hash or trial.config != config
            if trial is None:
                trial = Trial(experiment_id=experiment_id, name=name)
                s.add(trial)
            elif new_config:
                s.execute(delete(Param).where(Param.trial_id == trial.id))
            for field, value in (("config", config), ("config_hash", config_hash), ("sweep_point", sweep_point),
                                 ("info", info), ("group_name", group_name)):
                if getattr(trial, field, None) != value:
                    setattr(trial, field, value)
            s.flush()
            if new_config:
                rows = [{"trial_id": trial.id, **row._asdict()} for row in param_rows(config)]
                if rows:
                    s.connection().execute(insert(Param.__table__), rows)
            return trial_record(trial)

    # -- runs ---------------------------------------------------------------------------------
    def ensure_runs(self, experiment_id: int, runs: list[NewRun]) -> list[RunRecord]:
        with self._session() as s:
            have = {(h, r) for h, r in s.execute(select(Run.config_hash, Run.repeat)
                                                 .where(Run.experiment_id == experiment_id))}
            rows, now = [], utcnow()
            for new in runs:
                if (new.config_hash, new.repeat) not in have:
                    have.add((new.config_hash, new.repeat))
                    rows.append({"experiment_id": experiment_id, "trial_id": new.trial_id, "config_hash": new.config_hash,
                                 "repeat": new.repeat, "seed": new.seed, "status": RunStatus.PENDING.value,
                                 "created_at": now, "output_dir": str(new.output_dir), "attempts": 0})
            if rows:
                s.connection().execute(insert(Run.__table__), rows)
            by_key = {(r.config_hash, r.repeat): r for r in reads.run_records(s, Run.experiment_id == experiment_id)}
            return [by_key[(new.config_hash, new.repeat)] for new in runs]

    def claim_run(self, run_id: int, host: str, pid: int,
                  claimable: Iterable[RunStatus] = CLAIMABLE) -> AttemptRecord | None:
        statuses = [RunStatus(c).value for c in claimable]
        with self._session() as s:
            now = utcnow()
            claimed = s.connection().execute(
                update(Run.__table__).where(Run.id == run_id, Run.status.in_(statuses))
                .values(status=RunStatus.RUNNING.value, attempts=Run.attempts + 1, started_at=now, heartbeat_at=now,
                        finished_at=None, duration_s=None, host=host, pid=pid, error_type=None,
                        error_message=None, error_traceback=None))
            if claimed.rowcount == 0:
                return None
            number = s.scalar(select(Run.attempts).where(Run.id == run_id))
            attempt = Attempt(run_id=run_id, number=number, started_at=now, host=host, pid=pid)
            s.add(attempt)
            s.flush()
            return attempt_record(attempt)

    def heartbeat(self, run_id: int) -> None:
        with self._session() as s:
            s.connection().execute(update(Run.__table__).where(Run.id == run_id, Run.status == RunStatus.RUNNING.value)
                                   .values(heartbeat_at=utcnow()))

    def mark_stale(self, experiment_id: int, older_than_s: float) -> list[int]:
        with self._session() as s:
            now = utcnow()
            stale = s.scalars(select(Run).where(Run.experiment_id == experiment_id,
                                                Run.status == RunStatus.RUNNING.value,
                                                Run.heartbeat_at < now - timedelta(seconds=older_than_s))).all()
            for run in stale:
                run.status = RunStatus.STALE.value
                run.error_type = "Stale"
                run.error_message = f"no heartbeat since {run.heartbeat_at.isoformat()} (> {older_than_s:g} s)"
                s.execute(update(Attempt).where(Attempt.run_id == run.id, Attempt.finished_at.is_(None))
                          .values(finished_at=run.heartbeat_at, exit_reason=RunStatus.STALE.value))
            return [run.id for run in stale]

    def finish_run(self, run_id: int, attempt_id: int, status: RunStatus, summary: dict[str, float] | None = None,
                   error: ErrorInfo | None = None, peak_rss_mb: float | None = None) -> None:
        status = RunStatus(status)
        with self._session() as s:
            run, attempt = s.get(Run, run_id), s.get(Attempt, attempt_id)
            if run is None or attempt is None or attempt.run_id != run_id:
                raise KeyError(f"no attempt {attempt_id} of run {run_id}")
            now = utcnow()
            run.status, run.finished_at = status.value, now
            run.duration_s = None if run.started_at is None else (now - run.started_at).total_seconds()
            attempt.finished_at, attempt.exit_reason, attempt.peak_rss_mb = now, status.value, peak_rss_mb
            if error is not None:
                message = error.message[:TEXT_LIMIT]
                run.error_type, run.error_message = error.type, message
                run.error_traceback = None if error.traceback is None else error.traceback[-TEXT_LIMIT:]
                attempt.error_type, attempt.error_message = error.type, message
            if summary is not None:
                s.execute(delete(Summary).where(Summary.run_id == run_id))
                s.flush()
                if summary:
                    s.connection().execute(insert(Summary.__table__), [
                        {"run_id": run_id, "key": key, "value": _db_float(value)} for key, value in summary.items()])

    # -- metrics and artifacts ----------------------------------------------------------------
    def log_metrics(self, run_id: int, epoch: int, metrics: dict[str, float]) -> None:
        """Also refreshes the run's heartbeat."""
        new_ids: dict[str, int] = {}
        with self._session() as s:
            conn = s.connection()
            if any(name not in self._key_ids for name in metrics):
                new_ids = self._fetch_key_ids(conn, [n for n in metrics if n not in self._key_ids])
            ids = {**self._key_ids, **new_ids} if new_ids else self._key_ids
            if metrics:
                conn.execute(self._upsert_metric, [{"run_id": run_id, "key_id": ids[name], "epoch": epoch,
                                                    "value": _db_float(value)} for name, value in metrics.items()])
            conn.execute(self._bump_run, {"run_id": run_id, "epoch": epoch, "now": utcnow()})
        self._key_ids.update(new_ids)

    def _fetch_key_ids(self, conn: Connection, names: list[str]) -> dict[str, int]:
        conn.execute(self._insert_keys, [{"name": name} for name in names])
        return dict(conn.execute(select(MetricKey.name, MetricKey.id).where(MetricKey.name.in_(names))).all())

    def delete_metrics_after(self, run_id: int, epoch: int) -> int:
        with self._session() as s:
            deleted = s.connection().execute(delete(Metric.__table__).where(Metric.run_id == run_id,
                                                                            Metric.epoch > epoch)).rowcount
            last = s.scalar(select(func.max(Metric.epoch)).where(Metric.run_id == run_id))
            s.connection().execute(update(Run.__table__).where(Run.id == run_id).values(last_epoch=last))
            return deleted

    def add_artifact(self, run_id: int, kind: str, path: str, sha256: str, size_bytes: int) -> None:
        with self._session() as s:
            s.add(Artifact(run_id=run_id, kind=kind, path=str(path), sha256=sha256, size_bytes=size_bytes,
                           created_at=utcnow()))

    # -- reads --------------------------------------------------------------------------------
    def run(self, run_id: int) -> RunRecord:
        with self._session(write=False) as s:
            found = reads.run_records(s, Run.id == run_id)
        if not found:
            raise KeyError(f"no run {run_id} in {self.url}")
        return found[0]

    def runs(self, experiment_id: int, statuses: Iterable[RunStatus] | None = None) -> list[RunRecord]:
        with self._session(write=False) as s:
            return reads.runs(s, experiment_id, statuses)

    def trials(self, experiment_id: int) -> list[TrialRecord]:
        with self._session(write=False) as s:
            return reads.trials(s, experiment_id)

    def attempts(self, run_id: int) -> list[AttemptRecord]:
        with self._session(write=False) as s:
            return reads.attempts(s, run_id)

    def params(self, experiment_id: int) -> list[tuple[int, str, Any]]:
        with self._session(write=False) as s:
            return reads.params(s, experiment_id)

    def metrics(self, experiment_id: int, keys: Iterable[str] | None = None,
                run_ids: Iterable[int] | None = None) -> list[tuple[int, str, int, float]]:
        with self._session(write=False) as s:
            return reads.metrics(s, experiment_id, keys, run_ids)

    def summaries(self, experiment_id: int) -> list[tuple[int, str, float]]:
        with self._session(write=False) as s:
            return reads.summaries(s, experiment_id)

    def artifacts(self, run_id: int) -> list[tuple[str, str, str, int]]:
        with self._session(write=False) as s:
            return reads.artifacts(s, run_id)

    def status_counts(self, experiment_id: int) -> dict[str, dict[str, int]]:
        with self._session(write=False) as s:
            return reads.status_counts(s, experiment_id)

    def close(self) -> None:
        self._engine.dispose()
