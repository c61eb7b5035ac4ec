"""Executors run ``RunTask``s somewhere and report each ``RunOutcome`` as it arrives.

The pipeline never knows where it runs: an executor only moves plain ``RunTask`` data to a
worker, which calls ``experiment.worker.execute_task``. Workers never create or migrate the
schema (the parent did that before submitting anything).
"""
from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from typing import Callable

from experiment.worker import RunOutcome, RunTask, execute_task
from settings.errors import ConfigError, ConfigIssue


class Executor(ABC):
    name: str = "executor"
    n_jobs: int = 1

    @abstractmethod
    def run(self, tasks: list[RunTask], on_done: Callable[[RunOutcome], None]) -> None:
        """Execute every task; call ``on_done`` (in the parent) as each finishes."""

    def check(self) -> None:
        """Raise ConfigError if the executor cannot work here (called before anything is written)."""


class InlineExecutor(Executor):
    """Runs one task after the other in this process (so callbacks may hold live objects:
    ``callbacks_for(task)`` adds some to a run, e.g. an Optuna pruner)."""

    name = "inline"

    def __init__(self) -> None:
        self.callbacks_for: Callable[[RunTask], list] | None = None

    def run(self, tasks: list[RunTask], on_done: Callable[[RunOutcome], None]) -> None:
        for task in tasks:
            extra = self.callbacks_for(task) if self.callbacks_for is not None else []
            on_done(execute_task(task, extra))


class LokyExecutor(Executor):
    """``n_jobs`` local worker processes (joblib's loky backend), results in completion order.

    When a worker dies (SIGKILL, out of memory, or SIGTERM, after which the worker records its run
    INTERRUPTED and ends), loky tears the whole pool down, so every run in flight dies with it. The
    executor then starts a new pool for the runs not finished yet: their next claim sees the dead
    worker's run, marks it STALE and resumes it from its last checkpoint. After ``max_crashes``
    pool failures it gives up and leaves the rest for the next ``run``. Each task carries this
    process's pid: a worker whose parent died claims nothing more and ends.
    """

    name = "loky"

    def __init__(self, n_jobs: int, max_crashes: int = 3):
        self.n_jobs, self.max_crashes = n_jobs, max_crashes
        self.crashes: list[str] = []

    def run(self, tasks: list[RunTask], on_done: Callable[[RunOutcome], None]) -> None:
        from joblib import Parallel, delayed
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        parent = os.getpid()
        pending = {task.run_id: dataclasses.replace(task, parent_pid=parent) for task in tasks}
        while pending:
            try:
                parallel = Parallel(n_jobs=min(self.n_jobs, len(pending)), backend="loky",
                                    return_as="generator_unordered")
                for outcome in parallel(delayed(execute_task)(task) for task in list(pending.values())):
                    pending.pop(outcome.run_id, None)
                    on_done(outcome)
            except TerminatedWorkerError as exc:
                self.crashes.append(str(exc).split(".")[0])
                if len(self.crashes) >= self.max_crashes:
                    return


class DaskExecutor(Executor):
    """Runs on a ``dask.distributed`` cluster (``address``), or a local one with ``n_jobs`` worker
    processes. Dask resubmits a task whose worker died; its claim then resumes the run."""

    name = "dask"

    def __init__(self, n_jobs: int, address: str | None = None, connect_timeout_s: float = 10.0):
        self.n_jobs, self.address, self.connect_timeout_s = n_jobs, address, connect_timeout_s

    def check(self) -> None:
        """dask.distributed must be installed, and a cluster ``address`` must answer now, not after
        the runs were recorded."""
        import importlib.util

        if importlib.util.find_spec("distributed") is None or importlib.util.find_spec("dask") is None:
            raise ConfigError(ConfigIssue("executor.backend", "is dask, but dask.distributed is not installed; "
                                          "install it (pip install 'dask[distributed]', in requirements.txt) or use "
                                          "backend: loky", "experiment.yaml"))
        if not self.address:
            return
        from dask.distributed import Client

        try:
            Client(self.address, timeout=self.connect_timeout_s).close()
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(ConfigIssue("executor.address", f"no Dask scheduler answers at {self.address!r} "
                                          f"({type(exc).__name__}); start one (`dask scheduler`) or use backend: "
                                          "loky", "experiment.yaml")) from exc

    def run(self, tasks: list[RunTask], on_done: Callable[[RunOutcome], None]) -> None:
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None if self.address else LocalCluster(n_workers=self.n_jobs, threads_per_worker=1,
                                                        processes=True, dashboard_address=None)
        with Client(self.address or cluster) as client:
            futures = client.map(execute_task, tasks, pure=False)
            for future in as_completed(futures):
                on_done(future.result())
        if cluster is not None:
            cluster.close()


def make_executor(backend: str, n_jobs: int = 1, address: str | None = None) -> Executor:
    """``dask`` -> DaskExecutor; otherwise one job runs inline and several in loky workers."""
    if backend == "dask":
        return DaskExecutor(n_jobs, address)
    return InlineExecutor() if n_jobs == 1 else LokyExecutor(n_jobs)
