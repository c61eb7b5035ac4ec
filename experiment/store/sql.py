"""``SQLStore``: the experiment store on SQLAlchemy (SQLite by default, PostgreSQL for clusters).

Statements are built from the ORM models and executed on a Core connection; rows become frozen
records before they leave a method. All database work goes through :meth:`SQLStore._transaction`,
which begins (SQLite: ``BEGIN IMMEDIATE`` for writes), commits or rolls back, and closes. PostgreSQL
takes no lock at BEGIN: a write that depends on what it read first locks those rows (``FOR UPDATE``).

Metric logging is the hot path: ``metric_key`` ids are cached, and the epoch's rows go to the
driver's ``executemany`` with SQL compiled once for the dialect (no per-row ORM or SQLAlchemy
work), followed by one UPDATE of the run, in one transaction per call.
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from experiment.store import migrate, reads
from experiment.store.base import (CLAIMABLE, AttemptRecord, ErrorInfo, ExperimentRecord, ExperimentStore, NewRun,
                                   RunRecord, RunStatus, TrialRecord)
from experiment.store.engine import READ_OPTION, DriverStatement, make_engine
from experiment.store.models import (Artifact, Attempt, Environment, Experiment, Metric, MetricKey, Param, Run,
                                     Summary, Trial, utcnow)
from experiment.store.params import param_rows
from experiment.store.records import record

TEXT_LIMIT = 4000  # characters kept of error messages (head) and tracebacks (tail)
PLAN_LOCK_KEY = 0x5B1CE1AB  # PostgreSQL advisory lock taken by the transactions that write the plan


def _db_float(value: float | None) -> float | None:
    """NaN is stored as NULL (SQLite would do so anyway); infinities are kept."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class SQLStore(ExperimentStore):
    """The experiment store behind a SQLAlchemy URL. Never creates tables: the parent calls
    :meth:`create` (Alembic ``upgrade``); workers open ``SQLStore(url)``, which checks that the
    schema is at head. ``readonly`` stores (SQLite ``mode=ro``) refuse every write."""

    def __init__(self, url: str, readonly: bool = False, check_schema: bool = True) -> None:
        migrate.require_file(url)
        self.url, self.readonly = url, readonly
        self._engine = make_engine(url, readonly=readonly)
        self._read_engine = self._engine.execution_options(**{READ_OPTION: True})
        self._key_ids: dict[str, int] = {}
        self._pid = os.getpid()
        self._prepare_statements()
        if check_schema:
            try:
                migrate.check_schema(self._engine, url)
            except BaseException:
                self._engine.dispose()
                raise

    def _prepare_statements(self) -> None:
        """The hot-path statements, compiled once for this dialect (SQLite and PostgreSQL share
        the ``ON CONFLICT`` upsert syntax)."""
        dialect = self._engine.dialect
        if dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as upsert
        elif dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            raise ValueError(f"db URL must be sqlite or postgresql, got {dialect.name}")
        stmt = upsert(Metric)
        self._upsert_metric = DriverStatement(
            stmt.on_conflict_do_update(index_elements=["run_id", "key_id", "epoch"],
                                       set_={"value": stmt.excluded.value}),
            dialect, ("run_id", "key_id", "epoch", "value"))
        epoch = bindparam("epoch")
        self._bump_run = DriverStatement(
            update(Run).where(Run.id == bindparam("run_id")).values(
                last_epoch=case((or_(Run.last_epoch.is_(None), Run.last_epoch < epoch), epoch), else_=Run.last_epoch),
                heartbeat_at=bindparam("now")),
            dialect, ("run_id", "epoch", "now"))
        self._time_to_db = Run.__table__.c.heartbeat_at.type.bind_processor(dialect) or (lambda t: t)
        self._insert_keys = upsert(MetricKey).on_conflict_do_nothing(index_elements=["name"])
        # PostgreSQL flushes every commit to disk by default; a metric batch does not wait for that
        # (like SQLite's synchronous=NORMAL in WAL mode: a server crash may lose the last batches
        # whole, with their run's last_epoch, never half of one)
        self._relaxed_commit = "SET LOCAL synchronous_commit TO OFF" if dialect.name == "postgresql" else None

    @classmethod
    def create(cls, url: str) -> SQLStore:
        """Parent process only: create or migrate the schema (Alembic), then open the store."""
        migrate.upgrade(url)
        return cls(url)

    @contextmanager
    def _transaction(self, write: bool = True, exclusive: bool = False) -> Iterator[Connection]:
        """One transaction on a pooled connection: committed on success, rolled back on any
        exception, and the connection returned to the pool either way. ``exclusive`` write
        transactions (the plan: experiments, trials, runs, which read before they insert) run
        one at a time across processes: SQLite's ``BEGIN IMMEDIATE`` already does that; on
        PostgreSQL a transaction-level advisory lock does, so two ``run`` commands setting up the
        same experiment at once never both insert it."""
        if write and self.readonly:
            raise PermissionError(f"store {self.url} is open read-only")
        if os.getpid() != self._pid:  # a forked child must not share the parent's connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        with (self._engine if write else self._read_engine).begin() as conn:
            if exclusive and conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PLAN_LOCK_KEY})")
            yield conn

    # -- experiments and trials -------------------------------------------------------------
    def open_experiment(self, name: str, desc: str, root_seed: int, config_dir: str, files: dict[str, Any],
                        capsule: dict[str, Any], fresh: bool = False) -> ExperimentRecord:
        with self._transaction(exclusive=True) as conn:
            latest = conn.execute(select(Experiment.__table__).where(Experiment.name == name)
                                  .order_by(Experiment.version.desc()).limit(1)).mappings().first()
            if latest is not None and not fresh:
                return record(ExperimentRecord, latest)
            env_id = conn.execute(insert(Environment).values(
                created_at=utcnow(), git_sha=capsule.get("git_sha"), git_dirty=capsule.get("git_dirty"),
                python=str(capsule.get("python", "")), packages=dict(capsule.get("packages", {})),
                host=str(capsule.get("host", "")), cpu=capsule.get("cpu"), cpu_count=capsule.get("cpu_count"),
                platform=str(capsule.get("platform", "")))).inserted_primary_key[0]
            values = dict(name=name, version=1 if latest is None else latest["version"] + 1, desc=desc,
                          root_seed=root_seed, created_at=utcnow(), config_dir=str(config_dir), files=files)
            new_id = conn.execute(insert(Experiment).values(environment_id=env_id, **values)).inserted_primary_key[0]
            return ExperimentRecord(id=new_id, **values)

    def get_experiment(self, name: str, version: int | None = None) -> ExperimentRecord | None:
        query = select(Experiment.__table__).where(Experiment.name == name)
        query = query.order_by(Experiment.version.desc()) if version is None else query.where(
            Experiment.version == version)
        with self._transaction(write=False) as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        return None if row is None else record(ExperimentRecord, row)

    def list_experiments(self) -> list[ExperimentRecord]:
        query = select(Experiment.__table__).order_by(Experiment.name, Experiment.version)
        with self._transaction(write=False) as conn:
            return [record(ExperimentRecord, row) for row in conn.execute(query).mappings()]

    def upsert_trial(self, experiment_id: int, name: str, config: dict[str, Any], config_hash: str,
                     sweep_point: dict[str, Any] | None = None, info: dict[str, Any] | None = None,
                     group_name: str | None = None) -> TrialRecord:
        values = dict(config=config, config_hash=config_hash, sweep_point=sweep_point, info=info,
                      group_name=group_name)
        with self._transaction(exclusive=True) as conn:
            old = conn.execute(select(Trial.__table__).where(Trial.experiment_id == experiment_id,
                                                             Trial.name == name)).mappings().first()
            rewrite_params = old is None or old["config"] != config or old["config_hash"] != config_hash
            if old is None:
                trial_id = conn.execute(insert(Trial).values(experiment_id=experiment_id, name=name, **values)
                                        ).inserted_primary_key[0]
            else:
                trial_id = old["id"]
                changed = {k: v for k, v in values.items() if old[k] != v}
                if changed:
                    conn.execute(update(Trial).where(Trial.id == trial_id).values(**changed))
                if rewrite_params:
                    conn.execute(delete(Param).where(Param.trial_id == trial_id))
            if rewrite_params:
                rows = [{"trial_id": trial_id, **row._asdict()} for row in param_rows(config)]
                if rows:
                    conn.execute(insert(Param), rows)
        return TrialRecord(id=trial_id, experiment_id=experiment_id, name=name, **values)

    # -- runs ---------------------------------------------------------------------------------
    def ensure_runs(self, experiment_id: int, runs: list[NewRun]) -> list[RunRecord]:
        with self._transaction(exclusive=True) as conn:
            have = set(conn.execute(select(Run.config_hash, Run.repeat).where(Run.experiment_id == experiment_id)))
            rows, now = [], utcnow()
            for new in runs:
                if (new.config_hash, new.repeat) not in have:
                    have.add((new.config_hash, new.repeat))
                    rows.append(dict(experiment_id=experiment_id, trial_id=new.trial_id, config_hash=new.config_hash,
                                     repeat=new.repeat, seed=new.seed, status=RunStatus.PENDING.value,
                                     created_at=now, output_dir=str(new.output_dir), attempts=0,
                                     stage=new.stage, upstream_run_id=new.upstream_run_id))
            if rows:
                conn.execute(insert(Run), rows)
            by_key = {(r.config_hash, r.repeat): r for r in reads.run_records(conn, Run.experiment_id == experiment_id)}
        return [by_key[(new.config_hash, new.repeat)] for new in runs]

    def claim_run(self, run_id: int, host: str, pid: int,
                  claimable: Iterable[RunStatus] = CLAIMABLE) -> AttemptRecord | None:
        statuses = [RunStatus(c).value for c in claimable]
        with self._transaction() as conn:
            now = utcnow()
            claimed = conn.execute(update(Run).where(Run.id == run_id, Run.status.in_(statuses)).values(
                status=RunStatus.RUNNING.value, attempts=Run.attempts + 1, started_at=now, heartbeat_at=now,
                finished_at=None, duration_s=None, host=host, pid=pid, error_type=None, error_message=None,
                error_traceback=None))
            if claimed.rowcount == 0:
                return None
            number = conn.scalar(select(Run.attempts).where(Run.id == run_id))
            values = dict(run_id=run_id, number=number, started_at=now, finished_at=None, host=host, pid=pid,
                          exit_reason=None, error_type=None, error_message=None, peak_rss_mb=None)
            attempt_id = conn.execute(insert(Attempt).values(**values)).inserted_primary_key[0]
        return AttemptRecord(id=attempt_id, **values)

    def heartbeat(self, run_id: int) -> None:
        with self._transaction() as conn:
            conn.execute(update(Run).where(Run.id == run_id, Run.status == RunStatus.RUNNING.value)
                         .values(heartbeat_at=utcnow()))

    def mark_stale(self, experiment_id: int, older_than_s: float,
                   is_dead: Callable[[str | None, int | None, datetime | None], bool | None] | None = None,
                   status: RunStatus = RunStatus.STALE, reason: str | None = None) -> list[int]:
        cutoff = utcnow() - timedelta(seconds=min(older_than_s, 1e9))  # inf: only dead workers count
        with self._transaction() as conn:
            # PostgreSQL: FOR NO KEY UPDATE, so no heartbeat or finish_run comes between this read and the
            # update below, while metric inserts (which only need the run's key) go on
            running = conn.execute(select(Run.id, Run.heartbeat_at, Run.host, Run.pid, Run.started_at).where(
                Run.experiment_id == experiment_id, Run.status == RunStatus.RUNNING.value).order_by(Run.id)
                .with_for_update(key_share=True)).all()
            stale = []
            for run_id, last_beat, host, pid, started in running:
                dead = None if is_dead is None else is_dead(host, pid, started)
                if dead:
                    why = f"its worker process {pid} on {host} is gone"
                elif dead is None and (last_beat is None or last_beat < cutoff):
                    # only a worker whose process nobody here can see is judged by its heartbeat: a live
                    # local process is never stale, however long a loaded machine delays its beats
                    why = f"no heartbeat for more than {older_than_s:g} s"
                else:
                    continue
                stale.append(run_id)
                conn.execute(update(Run).where(Run.id == run_id).values(
                    status=status.value, error_type=status.value.title(), error_message=reason or why))
                conn.execute(update(Attempt).where(Attempt.run_id == run_id, Attempt.finished_at.is_(None))
                             .values(finished_at=last_beat or utcnow(), exit_reason=status.value))
        return stale

    def finish_run(self, run_id: int, attempt_id: int, status: RunStatus, summary: dict[str, float] | None = None,
                   error: ErrorInfo | None = None, peak_rss_mb: float | None = None) -> None:
        """``summary`` None leaves the stored summary as it is; a dict replaces it."""
        status, now = RunStatus(status), utcnow()
        failure: dict[str, Any] = {}
        if error is not None:
            failure = dict(error_type=error.type, error_message=error.message[:TEXT_LIMIT])
        with self._transaction() as conn:
            started = conn.execute(select(Run.started_at).join(Attempt, Attempt.run_id == Run.id)
                                   .where(Run.id == run_id, Attempt.id == attempt_id)).first()
            if started is None:
                raise KeyError(f"no attempt {attempt_id} of run {run_id} in {self.url}")
            duration = None if started[0] is None else (now - started[0]).total_seconds()
            traceback = {} if error is None else {"error_traceback": error.traceback and error.traceback[-TEXT_LIMIT:]}
            conn.execute(update(Run).where(Run.id == run_id).values(
                status=status.value, finished_at=now, duration_s=duration, **failure, **traceback))
            conn.execute(update(Attempt).where(Attempt.id == attempt_id).values(
                finished_at=now, exit_reason=status.value, peak_rss_mb=peak_rss_mb, **failure))
            if summary is not None:
                conn.execute(delete(Summary).where(Summary.run_id == run_id))
                if summary:
                    conn.execute(insert(Summary), [{"run_id": run_id, "key": key, "value": _db_float(value)}
                                                   for key, value in summary.items()])

    def fail_blocked(self, run_id: int, reason: str) -> None:
        claimable = [s.value for s in CLAIMABLE]
        with self._transaction() as conn:
            conn.execute(update(Run).where(Run.id == run_id, Run.status.in_(claimable)).values(
                status=RunStatus.FAILED.value, error_type="UpstreamNotCompleted", error_message=reason[:TEXT_LIMIT],
                error_traceback=None, finished_at=utcnow()))

    def extend_runs(self, run_ids: Iterable[int], epochs: int) -> None:
        ids = list(run_ids)
        if not ids:
            return
        with self._transaction(exclusive=True) as conn:
            conn.execute(update(Run).where(Run.id.in_(ids)).values(extended_epochs=epochs))
            conn.execute(update(Run).where(Run.id.in_(ids), Run.status == RunStatus.COMPLETED.value)
                         .values(status=RunStatus.PENDING.value))

    # -- metrics and artifacts ----------------------------------------------------------------
    def log_metrics(self, run_id: int, epoch: int, metrics: dict[str, float]) -> None:
        """Also refreshes the run's heartbeat."""
        new_ids: dict[str, int] = {}
        with self._transaction() as conn:
            missing = sorted(name for name in metrics if name not in self._key_ids)  # one lock order for all
            if missing:
                conn.execute(self._insert_keys, [{"name": name} for name in missing])
                query = select(MetricKey.name, MetricKey.id).where(MetricKey.name.in_(missing))
                new_ids = dict(conn.execute(query).all())
            ids = {**self._key_ids, **new_ids} if new_ids else self._key_ids
            upsert, bump = self._upsert_metric, self._bump_run
            values = [float(value) for value in metrics.values()]
            rows = [(run_id, ids[name], epoch, v if v == v else None) for name, v in zip(metrics, values)]  # NaN != NaN
            cursor, dbapi = conn.connection.cursor(), self._engine.dialect.loaded_dbapi
            try:
                if self._relaxed_commit:
                    cursor.execute(self._relaxed_commit)
                if rows:
                    self._execute_many(cursor, upsert.sql, rows if upsert.as_is else [upsert.params(r) for r in rows])
                cursor.execute(bump.sql, bump.params((run_id, epoch, self._time_to_db(utcnow()))))
            except dbapi.Error as error:  # raised as SQLAlchemy's exceptions, like every other method
                raise DBAPIError.instance(upsert.sql, None, error, dbapi.Error, dialect=self._engine.dialect) from error
            finally:
                cursor.close()
        self._key_ids.update(new_ids)  # only once committed: a rolled-back key id would dangle

    def _execute_many(self, cursor: Any, sql: str, params: list) -> None:
        """``executemany``, except on psycopg2, whose executemany sends one statement per row:
        ``execute_batch`` sends them in one round trip."""
        if self._engine.dialect.driver == "psycopg2":
            from psycopg2.extras import execute_batch

            execute_batch(cursor, sql, params, page_size=max(len(params), 1))
        else:
            cursor.executemany(sql, params)

    def delete_metrics_after(self, run_id: int, epoch: int) -> int:
        with self._transaction() as conn:
            deleted = conn.execute(delete(Metric).where(Metric.run_id == run_id, Metric.epoch > epoch)).rowcount
            last = conn.scalar(select(func.max(Metric.epoch)).where(Metric.run_id == run_id))
            conn.execute(update(Run).where(Run.id == run_id).values(last_epoch=last))
        return deleted

    def add_artifacts(self, run_id: int, artifacts: list[tuple[str, str, str, int]]) -> None:
        if not artifacts:
            return
        now = utcnow()
        with self._transaction() as conn:
            conn.execute(insert(Artifact), [dict(run_id=run_id, kind=kind, path=str(path), sha256=sha256,
                                                 size_bytes=size, created_at=now)
                                            for kind, path, sha256, size in artifacts])

    # -- reads --------------------------------------------------------------------------------
    def run(self, run_id: int) -> RunRecord:
        with self._transaction(write=False) as conn:
            found = reads.run_records(conn, Run.id == run_id)
        if not found:
            raise KeyError(f"no run {run_id} in {self.url}")
        return found[0]

    def runs(self, experiment_id: int, statuses: Iterable[RunStatus] | None = None) -> list[RunRecord]:
        with self._transaction(write=False) as conn:
            return reads.runs(conn, experiment_id, statuses)

    def trials(self, experiment_id: int) -> list[TrialRecord]:
        with self._transaction(write=False) as conn:
            return reads.trials(conn, experiment_id)

    def attempts(self, run_id: int) -> list[AttemptRecord]:
        with self._transaction(write=False) as conn:
            return reads.attempts(conn, run_id)

    def params(self, experiment_id: int) -> list[tuple[int, str, Any]]:
        with self._transaction(write=False) as conn:
            return reads.params(conn, experiment_id)

    def metrics(self, experiment_id: int, keys: Iterable[str] | None = None,
                run_ids: Iterable[int] | None = None) -> list[tuple[int, str, int, float]]:
        with self._transaction(write=False) as conn:
            return reads.metrics(conn, experiment_id, keys, run_ids)

    def summaries(self, experiment_id: int) -> list[tuple[int, str, float]]:
        with self._transaction(write=False) as conn:
            return reads.summaries(conn, experiment_id)

    def artifacts(self, run_id: int) -> list[tuple[str, str, str, int]]:
        with self._transaction(write=False) as conn:
            return reads.artifacts(conn, run_id)

    def experiment_artifacts(self, experiment_id: int) -> list[tuple[int, str, str, str, int]]:
        with self._transaction(write=False) as conn:
            return reads.experiment_artifacts(conn, experiment_id)

    def status_counts(self, experiment_id: int) -> dict[str, dict[str, int]]:
        with self._transaction(write=False) as conn:
            return reads.status_counts(conn, experiment_id)

    def environment(self, experiment_id: int) -> dict[str, Any]:
        query = select(Environment.__table__).join(Experiment, Experiment.environment_id == Environment.id).where(
            Experiment.id == experiment_id)
        with self._transaction(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return {} if row is None else {key: value for key, value in row.items() if key != "id"}

    def close(self) -> None:
        self._engine.dispose()
