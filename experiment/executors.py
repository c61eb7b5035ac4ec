"""Executors run ``RunTask``s somewhere and report each ``RunOutcome`` as it arrives.

The pipeline never knows where it runs: an executor only moves plain ``RunTask`` data to a
worker, which calls ``experiment.worker.execute_task``. Workers never create or migrate the
schema (the parent did that before submitting anything).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

from experiment.worker import RunOutcome, RunTask, execute_task


class Executor(ABC):
    name: str = "executor"
    n_jobs: int = 1

    @abstractmethod
    def run(self, tasks: list[RunTask], on_done: Callable[[RunOutcome], None]) -> None:
        """Execute every task; call ``on_done`` (in the parent) as each finishes."""


class InlineExecutor(Executor):
    """Runs one task after the other in this process."""

    name = "inline"

    def run(self, tasks: list[RunTask], on_done: Callable[[RunOutcome], None]) -> None:
        for task in tasks:
            on_done(execute_task(task))


def make_executor(backend: str, n_jobs: int = 1, address: str | None = None) -> Executor:
    if backend == "inline" or n_jobs == 1 and backend != "dask":
        return InlineExecutor()
    raise ValueError(f"executor backend {backend!r} is not available")
