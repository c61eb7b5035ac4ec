"""Eight processes writing into one database (SQLite, or PostgreSQL when given) at once lose no row and hit
no lock error."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from experiment.store import NewRun, RunStatus, SQLStore
from experiment.store.engine import is_sqlite
from testkit import execute_sql

WORKERS, EPOCHS, KEYS = 8, 200, 10


def test_eight_workers_log_metrics_concurrently(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # children import the worker from here
    from store_worker import claim_and_log

    url = store_url
    with SQLStore.create(url) as store:
        experiment = store.open_experiment("concurrent", "", 0, "", {}, {})
        trial = store.upsert_trial(experiment.id, "base", {"x": 1}, "c" * 64)
        runs = store.ensure_runs(experiment.id, [NewRun(trial.id, "c" * 64, r, r, f"out/{r}") for r in range(WORKERS)])

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=claim_and_log, args=(url, run.id, EPOCHS, KEYS, barrier, results))
                 for run in runs]
    for process in processes:
        process.start()
    reports = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)

    assert {run_id: error for run_id, error in reports.items() if error} == {}
    assert [process.exitcode for process in processes] == [0] * WORKERS
    with SQLStore(url) as store:
        assert len(store.metrics(experiment.id)) == WORKERS * EPOCHS * KEYS
        assert {r.status for r in store.runs(experiment.id)} == {RunStatus.COMPLETED}
        assert {r.last_epoch for r in store.runs(experiment.id)} == {EPOCHS - 1}
    assert execute_sql(url, "SELECT count(*) FROM metric_key") == [(KEYS,)]
    if is_sqlite(url):
        assert execute_sql(url, "PRAGMA integrity_check") == [("ok",)]


def test_processes_setting_up_one_experiment_at_once_share_it(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight `run`s starting together: one experiment, one trial, four runs, each claimed by exactly one."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from store_worker import plan_at_once

    SQLStore.create(store_url).close()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=plan_at_once, args=(store_url, i, barrier, results)) for i in range(WORKERS)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [error for *_, error in reports if error] == []
    assert len({experiment_id for _, experiment_id, _, _ in reports}) == 1
    claimed = sorted(run_id for _, _, runs, _ in reports for run_id in runs)
    assert len(claimed) == 4 and len(set(claimed)) == 4
    for table, expected in (("experiment", 1), ("trial", 1), ("run", 4), ("attempt", 4)):
        assert execute_sql(store_url, f"SELECT count(*) FROM {table}") == [(expected,)]
