"""A worker process for the concurrency test: claims one run and logs its metrics epoch by epoch.

Lives in its own module so that ``multiprocessing`` (spawn) can import it in the children.
"""
from __future__ import annotations

import os
import traceback
from typing import Any


def claim_and_log(url: str, run_id: int, epochs: int, keys: int, barrier: Any, results: Any) -> None:
    """Open the store (no schema work), wait for the others, then log ``epochs`` x ``keys`` points,
    one transaction per epoch. Puts ``(run_id, None)`` or ``(run_id, traceback)`` on ``results``."""
    try:
        from experiment.store import RunStatus, SQLStore

        store = SQLStore(url)
        barrier.wait(timeout=120)
        attempt = store.claim_run(run_id, "test-host", os.getpid())
        if attempt is None:
            raise RuntimeError(f"run {run_id} could not be claimed")
        for epoch in range(epochs):
            store.log_metrics(run_id, epoch, {f"metric_{k}": epoch + k / 100 for k in range(keys)})
            store.heartbeat(run_id)
        store.finish_run(run_id, attempt.id, RunStatus.COMPLETED, summary={"final": float(epochs)})
        store.close()
        results.put((run_id, None))
    except BaseException:  # reported to the parent, which fails the test
        results.put((run_id, traceback.format_exc()))


def plan_at_once(url: str, index: int, barrier: Any, results: Any) -> None:
    """Set up the same experiment as every other process at the same moment (the start of a
    ``run``): open it, write its trial and its runs; then try to claim each run."""
    try:
        from experiment.store import NewRun, SQLStore

        store = SQLStore(url)
        barrier.wait(timeout=120)
        experiment = store.open_experiment("together", "", 0, "", {}, {})
        trial = store.upsert_trial(experiment.id, "base", {"x": 1}, "d" * 64)
        runs = store.ensure_runs(experiment.id, [NewRun(trial.id, "d" * 64, r, r, f"out/{r}") for r in range(4)])
        claimed = [run.id for run in runs if store.claim_run(run.id, "test-host", os.getpid()) is not None]
        store.close()
        results.put((index, experiment.id, claimed, None))
    except BaseException:  # reported to the parent, which fails the test
        results.put((index, None, [], traceback.format_exc()))
