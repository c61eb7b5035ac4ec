"""Execute one run of the database: claim it, train it, record how it ended.

A ``RunTask`` carries only plain data, so it can travel to a local worker process or a Dask
worker. ``execute_task`` opens its own store connection (never creating or migrating the schema),
claims the run atomically, keeps a heartbeat while it trains, and closes the run COMPLETED,
FAILED (with exception type, message and traceback tail) or INTERRUPTED.

A local worker process (``RunTask.parent_pid`` set) lives only as long as the process that
submitted its task: it claims nothing once that parent is gone, and a watchdog thread stops it
(its run recorded INTERRUPTED) when the parent dies. A SIGTERM to such a worker records its run
INTERRUPTED and ends the worker process, which its executor handles like any dead worker.
"""
from __future__ import annotations

import hashlib
import os
import resource
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from experiment.callbacks import DBLogger, Heartbeat, RunLog
from experiment.run_folder import RunFolder
from experiment.store import ErrorInfo, RunStatus, SQLStore
from experiment.store.engine import absolute_url
from settings.loggers import LoggerSettings


@dataclass(frozen=True)
class MLflowTarget:
    tracking_uri: str
    experiment_name: str
    parent_run_id: str
    run_name: str


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs to execute one run (picklable)."""

    db_url: str
    experiment_id: int
    run_id: int
    label: str  # "trial/repeat_k"
    config: dict
    seed: int
    output_dir: str
    info: dict
    heartbeat_s: float = 5.0
    mlflow: MLflowTarget | None = None
    progress: bool = False
    threads: int | None = None
    plots: bool = True
    parent_pid: int | None = None  # a local worker's submitting process (None: inline or a cluster)
    loggers: LoggerSettings = LoggerSettings()  # experiment.yaml's extra writers (TensorBoard, profiler, W&B)


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    label: str
    status: str  # a RunStatus value, or "SKIPPED" when another worker had claimed it
    seconds: float = 0.0
    final: dict = field(default_factory=dict)
    error: str | None = None
    notes: tuple[str, ...] = ()  # what the user should know about the run (e.g. a checkpoint set aside)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _record_artifacts(store: SQLStore, run_id: int, output_dir: Path) -> None:
    store.add_artifacts(run_id, [(kind, str(path), _sha256(path), path.stat().st_size)
                                 for kind, path in RunFolder(output_dir).artifacts()])


def _resume_point(store: SQLStore, run_id: int, output_dir: Path) -> tuple[Path | None, dict | None, list[str]]:
    """An interrupted or stale previous attempt resumes from its last checkpoint, and so does a
    completed run that ``run --extend`` extended; anything else (first attempt, or a retry after
    FAILED) starts over. A checkpoint that cannot be loaded
    (truncated, corrupt, or refused as unsafe) is renamed ``*.unusable`` and best.pt tried, else
    the run starts over. Returns the checkpoint's path, the checkpoint, and notes that say what
    happened (one line each, naming the file)."""
    from pipeline.callbacks.checkpoint import CheckpointError, load_checkpoint

    attempts = store.attempts(run_id)
    previous = attempts[-2] if len(attempts) >= 2 else None
    resumable = (RunStatus.INTERRUPTED.value, RunStatus.STALE.value)
    extending = previous is not None and previous.exit_reason == RunStatus.COMPLETED.value \
        and store.run(run_id).extended_epochs is not None
    if previous is None or (previous.exit_reason not in resumable and not extending):
        return None, None, []
    notes: list[str] = []
    folder = RunFolder(output_dir)
    for path in (folder.checkpoint("last"), folder.checkpoint("best")):
        if not path.is_file():
            continue
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as exc:
            kept = path.with_name(path.name + ".unusable")
            os.replace(path, kept)
            notes.append(f"{exc}; moved to {kept.name}")
            continue
        if notes:
            notes.append(f"resuming from {path} (epoch {int(ckpt['epoch'])}) instead")
        return path, ckpt, notes
    if notes:
        notes.append("no usable checkpoint: the run starts over from epoch 0")
    return None, None, notes


_STORES: dict[str, SQLStore] = {}


def worker_store(url: str) -> SQLStore:
    """One store per database in each worker process, reused across its runs (so SQLAlchemy's
    compiled-statement cache is warm); never creates or migrates the schema."""
    url = absolute_url(url)  # a relative SQLite path must not reach another file after a chdir
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = SQLStore(url)
    return store


def claim(store: SQLStore, task: RunTask):
    """Claim the run; a run left RUNNING by a dead worker (a crashed local process, or a cluster
    worker whose heartbeat stopped) is marked STALE and claimed, waiting at most two heartbeats."""
    from tools.processes import process_is_dead

    attempt = store.claim_run(task.run_id, socket.gethostname(), os.getpid())
    deadline = time.monotonic() + 2 * task.heartbeat_s + 1
    while attempt is None and store.run(task.run_id).status == RunStatus.RUNNING and time.monotonic() < deadline:
        if task.run_id in store.mark_stale(task.experiment_id, 2 * task.heartbeat_s, process_is_dead):
            attempt = store.claim_run(task.run_id, socket.gethostname(), os.getpid())
        else:
            time.sleep(min(1.0, task.heartbeat_s / 2))
    return attempt


def in_local_worker(task: RunTask) -> bool:
    """Whether this process is a local worker of the process that submitted ``task`` (joblib runs
    a lone task in the submitting process itself, which is no worker)."""
    return task.parent_pid is not None and os.getpid() != task.parent_pid


def parent_is_gone(task: RunTask) -> bool:
    """Whether the local process that submitted ``task`` has died (this worker is an orphan)."""
    return in_local_worker(task) and os.getppid() != task.parent_pid


_TRAINING = threading.Event()  # set while this process executes a task
_WATCHDOG: list[threading.Thread] = []  # the parent watchdog of this process, once started


def _watch_parent(parent_pid: int, interval_s: float) -> None:
    """Ends this worker process soon after its parent died: a run in progress is interrupted
    (SIGTERM, so it is recorded INTERRUPTED), an idle worker exits at once."""
    import signal

    while os.getppid() == parent_pid:
        time.sleep(interval_s)
    if _TRAINING.is_set():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10 * interval_s + 5)  # the run records itself INTERRUPTED and the process ends
    os._exit(1)


def start_parent_watchdog(parent_pid: int, interval_s: float = 0.2) -> None:
    """Once per worker process: a daemon thread that ends the process when ``parent_pid`` dies."""
    if not _WATCHDOG:
        _WATCHDOG.append(threading.Thread(target=_watch_parent, args=(parent_pid, interval_s),
                                          name="parent-watchdog", daemon=True))
        _WATCHDOG[0].start()


def _end_worker_process() -> None:
    """A local worker stopped by SIGTERM dies of it (its executor sees a dead worker and resumes
    its runs) instead of raising the interrupt into the parent, which would stop the whole sweep."""
    import signal
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)


def execute_task(task: RunTask, extra_callbacks: list | tuple = ()) -> RunOutcome:
    """Claim and run ``task``; an exception in the run is recorded, never raised (interrupts are,
    except in a local worker process, which ends instead). ``extra_callbacks`` are live objects, so
    only the inline executor passes any."""
    from tools.devices import set_threads
    from tools.signals import install_sigterm_handler

    if in_local_worker(task):
        if parent_is_gone(task):  # an orphan never claims a run: the re-run of its sweep will
            os._exit(1)
        start_parent_watchdog(task.parent_pid)
    if threading.current_thread() is threading.main_thread():
        install_sigterm_handler()  # a terminated worker records its run as INTERRUPTED
    if task.threads:
        set_threads(task.threads)
    store = worker_store(task.db_url)
    _TRAINING.set()
    try:
        return _execute_claimed(task, store, extra_callbacks)
    except KeyboardInterrupt:
        if in_local_worker(task):
            _end_worker_process()
        raise
    finally:
        _TRAINING.clear()


def _execute_claimed(task: RunTask, store: SQLStore, extra_callbacks: list | tuple) -> RunOutcome:
    from experiment.runner import execute_run
    from pipeline.callbacks.run_plots import RunPlots

    attempt = claim(store, task)
    if attempt is None:
        return RunOutcome(task.run_id, task.label, "SKIPPED",
                          error=f"already {store.run(task.run_id).status.value} (claimed elsewhere)")
    output_dir = Path(task.output_dir)
    log = RunLog(RunFolder(output_dir).log)
    resume_path, resume, notes = _resume_point(store, task.run_id, output_dir)
    if resume is None:
        store.delete_metrics_after(task.run_id, -1)  # a fresh start forgets partial attempts
        for stale in RunFolder(output_dir).checkpoints.glob("*.pt"):
            stale.unlink()
    extension = task.info.get("extended_epochs")
    log.note(f"attempt {attempt.number} of run {task.run_id} ({task.label}) on {socket.gethostname()}, pid {os.getpid()}, "
             f"seed {task.seed}" + (f", resuming from {resume_path.name}" if resume_path is not None else "")
             + (f", extended to {extension} epochs" if extension is not None else ""))
    for note in notes:
        log.note(note)
    plots = RunPlots() if task.plots else None
    callbacks = [DBLogger(store, task.run_id), log, *([plots] if plots else []), *extra_callbacks]
    init = task.info.get("init_from")
    if init is not None:
        from pipeline.callbacks.init_from import InitFromCheckpoint

        callbacks.append(InitFromCheckpoint(init["checkpoint"], init["modules"]))
        if resume is None:
            log.note(f"stage {task.info['stage']!r} starts from run {init['run_id']} ({init['label']}): "
                     f"{', '.join(init['modules'])} from {init['checkpoint']}")
    if task.mlflow is not None:
        from experiment.mlflow_mirror import MLflowCallback
        from settings.paths import flatten

        tags = {"spikelab.run_id": str(task.run_id), "spikelab.config_hash": str(task.info.get("config_hash", ""))}
        if "stage" in task.info:
            tags["spikelab.stage"] = task.info["stage"]
        if init is not None:
            tags["spikelab.upstream_run_id"] = str(init["run_id"])
        if extension is not None:
            tags["spikelab.extended_epochs"] = str(extension)  # the params keep the trial's epochs
        callbacks.append(MLflowCallback(task.mlflow.tracking_uri, task.mlflow.experiment_name,
                                        task.mlflow.parent_run_id, task.mlflow.run_name,
                                        flatten(task.config), tags=tags))
    if task.loggers.any:
        from experiment.loggers import run_loggers

        callbacks += run_loggers(task.loggers, output_dir, task.config, task.info, task.label, log.note)
    t0 = time.perf_counter()
    with Heartbeat(store, task.run_id, task.heartbeat_s):
        try:
            result = execute_run(task.config, task.seed, output_dir, task.info, callbacks, resume,
                                 progress=task.progress)
        except KeyboardInterrupt as exc:
            store.finish_run(task.run_id, attempt.id, RunStatus.INTERRUPTED, summary={},
                             error=ErrorInfo(type(exc).__name__, str(exc) or "interrupted"),
                             peak_rss_mb=_peak_rss_mb())
            log.note(f"INTERRUPTED ({type(exc).__name__}); the next run of this experiment resumes it")
            raise
        except Exception as exc:  # the run failed; the sweep goes on
            tail = traceback.format_exc()[-4000:]
            store.finish_run(task.run_id, attempt.id, RunStatus.FAILED, summary={},
                             error=ErrorInfo(type(exc).__name__, str(exc), tail), peak_rss_mb=_peak_rss_mb())
            log.note(f"FAILED: {type(exc).__name__}: {exc}\n{tail}")
            return RunOutcome(task.run_id, task.label, RunStatus.FAILED.value, time.perf_counter() - t0,
                              error=f"{type(exc).__name__}: {exc}", notes=tuple(notes))
    if plots is not None and plots.problem:
        log.note(plots.problem)
    log.note(f"COMPLETED in {time.perf_counter() - t0:.1f} s")
    _record_artifacts(store, task.run_id, output_dir)
    store.finish_run(task.run_id, attempt.id, RunStatus.COMPLETED, summary=result.summary,
                     peak_rss_mb=_peak_rss_mb())
    final = {k: v for k, v in result.history[-1].items() if k != "epoch"} if result.history else {}
    return RunOutcome(task.run_id, task.label, RunStatus.COMPLETED.value, time.perf_counter() - t0, final,
                      notes=tuple(notes))
