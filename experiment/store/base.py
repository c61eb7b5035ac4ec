"""The experiment store interface: plain frozen records in, plain frozen records out.

Nothing here knows about SQLAlchemy. Implementations (``SQLStore``) keep their ORM rows and
sessions to themselves; callers only ever see the records below, or lists of tuples for bulk
reads (params, metrics, summaries).

NaN convention: a metric or summary value of ``NaN`` is stored as SQL ``NULL`` and read back as
``float("nan")``; ``+inf`` and ``-inf`` are stored as such and round-trip exactly.
"""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable


class RunStatus(str, enum.Enum):
    """Life cycle of a run: PENDING -> RUNNING -> COMPLETED | FAILED | INTERRUPTED | STALE."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"
    STALE = "STALE"


#: States a worker may (re)start: everything that is neither running nor done.
CLAIMABLE: tuple[RunStatus, ...] = (RunStatus.PENDING, RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.STALE)


@dataclass(frozen=True)
class ExperimentRecord:
    """One version of a named experiment; ``files`` holds the raw YAML files as dicts."""

    id: int
    name: str
    version: int
    desc: str
    root_seed: int
    created_at: datetime
    config_dir: str
    files: dict[str, Any]


@dataclass(frozen=True)
class TrialRecord:
    """A fully resolved trial config; ``group_name`` is the trials.yaml entry of a sweep point."""

    id: int
    experiment_id: int
    name: str
    group_name: str | None
    config: dict[str, Any]
    config_hash: str
    sweep_point: dict[str, Any] | None
    info: dict[str, Any] | None


@dataclass(frozen=True)
class RunRecord:
    """One repeat of a trial and the state of its latest attempt (times in UTC)."""

    id: int
    experiment_id: int
    trial_id: int
    trial_name: str
    config_hash: str
    repeat: int
    seed: int
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    host: str | None
    pid: int | None
    output_dir: str
    attempts: int
    error_type: str | None
    error_message: str | None
    error_traceback: str | None
    heartbeat_at: datetime | None
    last_epoch: int | None
    extended_epochs: int | None = None  # set by ``run --extend``: the run trains to this many epochs
    stage: str | None = None  # the stage of a staged trial this run belongs to (settings.stages)
    upstream_run_id: int | None = None  # the run whose checkpoint the stage starts from


@dataclass(frozen=True)
class AttemptRecord:
    """One execution of a run; ``exit_reason`` is the final status value, None while running."""

    id: int
    run_id: int
    number: int
    started_at: datetime
    finished_at: datetime | None
    host: str | None
    pid: int | None
    exit_reason: str | None
    error_type: str | None
    error_message: str | None
    peak_rss_mb: float | None


@dataclass(frozen=True)
class NewRun:
    """A planned run handed to :meth:`ExperimentStore.ensure_runs`."""

    trial_id: int
    config_hash: str
    repeat: int
    seed: int
    output_dir: str
    stage: str | None = None
    upstream_run_id: int | None = None


@dataclass(frozen=True)
class ErrorInfo:
    """Why a run failed: exception type name, message and formatted traceback."""

    type: str
    message: str
    traceback: str | None = None


class ExperimentStore(ABC):
    """Where experiments, trials, runs, params, metrics and artifacts are recorded."""

    url: str

    # -- experiments and trials -------------------------------------------------------------
    @abstractmethod
    def open_experiment(self, name: str, desc: str, root_seed: int, config_dir: str, files: dict[str, Any],
                        capsule: dict[str, Any], fresh: bool = False) -> ExperimentRecord:
        """The latest version of ``name`` (version 1 created if none); ``fresh`` creates latest+1.
        The environment capsule is stored with a newly created version."""

    @abstractmethod
    def get_experiment(self, name: str, version: int | None = None) -> ExperimentRecord | None:
        """One version of ``name`` (the latest when ``version`` is None), or None."""

    @abstractmethod
    def list_experiments(self) -> list[ExperimentRecord]:
        """Every version of every experiment, by name then version."""

    @abstractmethod
    def upsert_trial(self, experiment_id: int, name: str, config: dict[str, Any], config_hash: str,
                     sweep_point: dict[str, Any] | None = None, info: dict[str, Any] | None = None,
                     group_name: str | None = None) -> TrialRecord:
        """The trial ``name`` of the experiment, created or updated; its flattened params are
        (re)written in the same transaction."""

    # -- runs ---------------------------------------------------------------------------------
    @abstractmethod
    def ensure_runs(self, experiment_id: int, runs: list[NewRun]) -> list[RunRecord]:
        """Insert the missing (config_hash, repeat) runs as PENDING; existing ones are untouched.
        Returns one record per given run, in order."""

    @abstractmethod
    def claim_run(self, run_id: int, host: str, pid: int,
                  claimable: Iterable[RunStatus] = CLAIMABLE) -> AttemptRecord | None:
        """Atomically move the run to RUNNING if its status is claimable and open a new attempt;
        None if another worker got it first or it is not claimable."""

    @abstractmethod
    def heartbeat(self, run_id: int) -> None:
        """Record that the worker of a RUNNING run is alive."""

    @abstractmethod
    def mark_stale(self, experiment_id: int, older_than_s: float,
                   is_dead: Callable[[str | None, int | None, datetime | None], bool | None] | None = None,
                   status: RunStatus = RunStatus.STALE, reason: str | None = None) -> list[int]:
        """RUNNING runs whose worker ``is_dead(host, pid, started_at)`` says is gone (True), or, when
        it cannot tell (None: another host, or no ``is_dead``), that have had no heartbeat for
        ``older_than_s`` seconds (``inf``: never), become ``status`` (STALE; INTERRUPTED when the
        parent knows it stopped them) with ``reason``; their ids. A worker ``is_dead`` sees alive
        (False) is never stale."""

    @abstractmethod
    def finish_run(self, run_id: int, attempt_id: int, status: RunStatus, summary: dict[str, float] | None = None,
                   error: ErrorInfo | None = None, peak_rss_mb: float | None = None) -> None:
        """Close the run and its attempt with ``status``; ``summary`` replaces the run's summary."""

    @abstractmethod
    def fail_blocked(self, run_id: int, reason: str) -> None:
        """A PENDING (or FAILED, INTERRUPTED, STALE) run that cannot start because its upstream
        stage did not complete becomes FAILED with ``reason``, without an attempt (so it keeps its
        retries for when the upstream completes)."""

    @abstractmethod
    def extend_runs(self, run_ids: Iterable[int], epochs: int) -> None:
        """Record that the runs train on to ``epochs`` epochs (``run --extend``); COMPLETED ones
        become PENDING again, so that a worker claims them and continues from their last checkpoint."""

    # -- metrics and artifacts ----------------------------------------------------------------
    @abstractmethod
    def log_metrics(self, run_id: int, epoch: int, metrics: dict[str, float]) -> None:
        """One epoch of metrics in one transaction; re-logging an epoch replaces its values."""

    @abstractmethod
    def delete_metrics_after(self, run_id: int, epoch: int) -> int:
        """Delete the run's metric rows with an epoch above ``epoch`` (resume); how many."""

    @abstractmethod
    def add_artifacts(self, run_id: int, artifacts: list[tuple[str, str, str, int]]) -> None:
        """Record files the run produced, ``(kind, path, sha256, size_bytes)`` each, in one transaction."""

    # -- reads --------------------------------------------------------------------------------
    @abstractmethod
    def run(self, run_id: int) -> RunRecord:
        """One run; KeyError if there is none."""

    @abstractmethod
    def runs(self, experiment_id: int, statuses: Iterable[RunStatus] | None = None) -> list[RunRecord]:
        """The experiment's runs (optionally only those in ``statuses``), by id."""

    @abstractmethod
    def trials(self, experiment_id: int) -> list[TrialRecord]:
        """The experiment's trials, by id."""

    @abstractmethod
    def attempts(self, run_id: int) -> list[AttemptRecord]:
        """The run's attempts, by number."""

    @abstractmethod
    def params(self, experiment_id: int) -> list[tuple[int, str, Any]]:
        """(trial_id, key, typed value) for every flattened param of the experiment's trials."""

    @abstractmethod
    def metrics(self, experiment_id: int, keys: Iterable[str] | None = None,
                run_ids: Iterable[int] | None = None) -> list[tuple[int, str, int, float]]:
        """(run_id, key, epoch, value) ordered by run, key, epoch; NULL values come back as NaN."""

    @abstractmethod
    def summaries(self, experiment_id: int) -> list[tuple[int, str, float]]:
        """(run_id, key, value) for the experiment's runs, ordered by run and key."""

    @abstractmethod
    def artifacts(self, run_id: int) -> list[tuple[str, str, str, int]]:
        """(kind, path, sha256, size_bytes) of the run's artifacts, in insertion order."""

    @abstractmethod
    def experiment_artifacts(self, experiment_id: int) -> list[tuple[int, str, str, str, int]]:
        """(run_id, kind, path, sha256, size_bytes) of every artifact of the experiment's runs,
        by run, in insertion order (one query, for checks over a whole experiment)."""

    @abstractmethod
    def status_counts(self, experiment_id: int) -> dict[str, dict[str, int]]:
        """Trial name -> {status value: number of runs}."""

    @abstractmethod
    def environment(self, experiment_id: int) -> dict[str, Any]:
        """The environment capsule the experiment version was created in: ``git_sha, git_dirty,
        python, packages, host, cpu, cpu_count, platform, created_at``."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> ExperimentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
