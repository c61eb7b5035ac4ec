"""``python main.py run``: plan, record, execute, report.

The parent process alone creates/migrates the schema, opens the experiment version, writes the
trials (with their params) and the run rows (PENDING), marks dead runs STALE, mirrors trials to
MLflow, then hands the runs that still need work to an executor. Running the same command again
executes only what is not COMPLETED.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from experiment.executors import Executor, make_executor
from experiment.plan import PlannedRun, plan_runs, safe_name
from experiment.store import (ExperimentRecord, NewRun, RunRecord, RunStatus, SQLStore, environment_capsule)
from experiment.worker import MLflowTarget, RunOutcome, RunTask
from settings.experiment_files import FILE_NAMES
from settings.resolve import ResolvedExperiment
from tools.devices import available_cores


@dataclass
class SessionResult:
    experiment: ExperimentRecord
    db_url: str
    run_root: Path
    outcomes: list[RunOutcome] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    mlflow_uri: str | None = None

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == RunStatus.FAILED.value]

    @property
    def exit_code(self) -> int:
        return 3 if self.failed else 0


def experiment_folder_name(name: str, version: int) -> str:
    return safe_name(name) if version == 1 else f"{safe_name(name)}_v{version}"


def copy_config_files(source: Path, target: Path) -> None:
    """Keep the four files as ``outputs/<experiment>/config/`` (``run`` accepts that folder too)."""
    if source.resolve() == target.resolve():
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in FILE_NAMES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)


def needs_work(run: RunRecord, max_retries: int, retry_failed: bool) -> str | None:
    """Why a run is (re)executed, or None to skip it."""
    if run.status in (RunStatus.PENDING, RunStatus.INTERRUPTED, RunStatus.STALE):
        return run.status.value
    if run.status == RunStatus.FAILED and (retry_failed or run.attempts <= max_retries):
        return run.status.value
    return None


def _threads_per_worker(executor: Executor, env_threads: int | None) -> int | None:
    if env_threads:
        return env_threads
    if executor.n_jobs > 1:
        return max(1, available_cores() // executor.n_jobs)
    return None


def run_experiment(resolved: ResolvedExperiment, *, db_url: str | None = None, fresh: bool = False,
                   n_jobs: int | None = None, progress: bool = True, retry_failed: bool = False,
                   mlflow: bool | None = None, out: TextIO | None = None,
                   on_outcome: Callable[[RunOutcome], None] | None = None) -> SessionResult:
    out = out or sys.stdout
    settings = resolved.settings
    db_url = db_url or settings.db_url
    executor = make_executor(settings.executor.backend, n_jobs or settings.executor.n_jobs, settings.executor.address)
    store = SQLStore.create(db_url)  # the parent alone creates or migrates the schema
    try:
        raw = json_safe({"experiment": dataclasses.asdict(settings), "config": resolved.files.config,
                         "env": resolved.files.env, "trials": [dataclasses.asdict(t) for t in resolved.files.trials]})
        experiment = store.open_experiment(settings.name, settings.desc, settings.seed, str(resolved.folder),
                                           raw, environment_capsule(), fresh=fresh)
        folder = experiment_folder_name(settings.name, experiment.version)
        run_root = Path(settings.base_dir) / folder
        copy_config_files(resolved.folder, run_root / "config")
        planned = plan_runs(resolved, folder)
        trial_ids = {}
        for trial in resolved.trials:
            record = store.upsert_trial(experiment.id, trial.name, trial.config, planned_hash(planned, trial.name),
                                        trial.sweep_point, trial.info, trial.group)
            trial_ids[trial.name] = record.id
        records = store.ensure_runs(experiment.id, [
            NewRun(trial_ids[p.trial.name], p.config_hash, p.repeat, p.seed, str(p.output_dir)) for p in planned])
        stale = store.mark_stale(experiment.id, 2 * settings.heartbeat_s)
        if stale:
            records = [store.run(r.id) for r in records]
        result = SessionResult(experiment, db_url, run_root)
        todo: list[tuple[PlannedRun, RunRecord]] = []
        for plan, record in zip(planned, records):
            if needs_work(record, settings.max_retries, retry_failed):
                todo.append((plan, record))
            else:
                result.skipped[record.status.value] = result.skipped.get(record.status.value, 0) + 1
        print(f"experiment {settings.name} (version {experiment.version}): {len(resolved.trials)} trial(s), "
              f"{len(planned)} run(s); {len(todo)} to run", file=out)
        for status, count in sorted(result.skipped.items()):
            print(f"  skipping {count} {status.lower()} run(s)" + (
                " (use --retry-failed to run them again)" if status == "FAILED" else ""), file=out)
        if stale:
            print(f"  {len(stale)} run(s) had lost their heartbeat (STALE): re-queued", file=out)
        use_mlflow = settings.mlflow.enabled if mlflow is None else mlflow
        parents = {}
        if use_mlflow and todo:
            from experiment.mlflow_mirror import ensure_parent_runs

            logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter
            result.mlflow_uri = settings.mlflow_uri
            ensure_sqlite_folder(result.mlflow_uri)
            parents = ensure_parent_runs(result.mlflow_uri, mlflow_experiment_name(experiment),
                                         {t.name: t.config for t in resolved.trials})
        elif use_mlflow:
            result.mlflow_uri = settings.mlflow_uri
        threads = _threads_per_worker(executor, None)
        tasks = [RunTask(db_url, record.id, plan.label, plan.trial.config, plan.seed, str(plan.output_dir),
                         {"experiment": settings.name, "version": experiment.version, "trial": plan.trial.name,
                          "repeat": plan.repeat, "seed": plan.seed, "config_hash": plan.config_hash,
                          "run_id": record.id, "db": db_url},
                         settings.heartbeat_s,
                         MLflowTarget(result.mlflow_uri, mlflow_experiment_name(experiment), parents[plan.trial.name],
                                      f"{plan.trial.name}/repeat_{plan.repeat}") if parents else None,
                         progress and executor.n_jobs == 1, plan.trial.config["env"].get("threads") or threads)
                 for plan, record in todo]

        def done(outcome: RunOutcome) -> None:
            result.outcomes.append(outcome)
            print(describe_outcome(outcome), file=out, flush=True)
            if on_outcome is not None:
                on_outcome(outcome)

        executor.run(tasks, done)
        return result
    finally:
        store.close()


def planned_hash(planned: list[PlannedRun], trial: str) -> str:
    return next(p.config_hash for p in planned if p.trial.name == trial)


def mlflow_experiment_name(experiment: ExperimentRecord) -> str:
    return experiment.name if experiment.version == 1 else f"{experiment.name}_v{experiment.version}"


def ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def describe_outcome(outcome: RunOutcome) -> str:
    if outcome.status == "SKIPPED":
        return f"skipped {outcome.label}: another worker claimed it"
    if outcome.status == RunStatus.FAILED.value:
        return f"FAILED {outcome.label} after {outcome.seconds:.1f}s: {outcome.error}"
    shown = ", ".join(f"{k} {outcome.final[k]:.4g}" for k in ("train_acc", "val_acc", "test_acc")
                      if k in outcome.final)
    return f"done {outcome.label} in {outcome.seconds:.1f}s: {shown}"


def json_safe(value: object) -> object:
    """Tuple keys (tied sweep paths) become ``"[a, b]"`` strings; tuples become lists."""
    if isinstance(value, dict):
        return {(f"[{', '.join(map(str, k))}]" if isinstance(k, tuple) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
