"""The experiment store (SQLStore on SQLite, and on PostgreSQL when a server is given, see conftest.py):
records, run life cycle, metrics, read-only access."""
from __future__ import annotations

import math

import pytest
from sqlalchemy.exc import IntegrityError

from experiment.store import (ErrorInfo, NewRun, RunStatus, SQLStore, environment_capsule)
from testkit import execute_sql

CONFIG = {
    "model": {"layers": [{"kernel": {"tau_m": 10.0, "type": "LIFKernel"}, "out_features": 16},
                         {"kernel": {"tau_m": 5, "learn": True}}]},
    "optimizer": {"lr": 1e-3, "schedule": None},
    "tags": [],
    "extra": {},
}
HASH = "a" * 64


@pytest.fixture
def url(store_url: str) -> str:
    return store_url


@pytest.fixture
def store(url: str):
    with SQLStore.create(url) as created:
        yield created


@pytest.fixture
def experiment(store: SQLStore):
    return store.open_experiment("demo", "a demo", 7, "configs/demo", {"config": CONFIG}, environment_capsule())


@pytest.fixture
def trial(store: SQLStore, experiment):
    return store.upsert_trial(experiment.id, "base", CONFIG, HASH, info={"note": "x"})


def new_runs(trial, n: int, config_hash: str = HASH) -> list[NewRun]:
    return [NewRun(trial.id, config_hash, repeat, 2**63 - 1 - repeat, f"out/base/repeat_{repeat}")
            for repeat in range(n)]


# -- experiments and trials ---------------------------------------------------------------------
def test_experiment_versions(store: SQLStore, experiment) -> None:
    again = store.open_experiment("demo", "changed", 8, "elsewhere", {}, {})
    assert again == experiment and again.version == 1 and again.files == {"config": CONFIG}
    fresh = store.open_experiment("demo", "second", 9, "configs/demo", {}, environment_capsule(), fresh=True)
    assert fresh.version == 2 and fresh.id != experiment.id
    assert store.get_experiment("demo") == fresh
    assert store.get_experiment("demo", version=1) == experiment
    assert store.get_experiment("missing") is None
    assert [(e.name, e.version) for e in store.list_experiments()] == [("demo", 1), ("demo", 2)]
    assert execute_sql(store.url, "SELECT count(*) FROM environment WHERE python != ''") == [(2,)]


def test_environment_reads_the_capsule_back(store: SQLStore, experiment) -> None:
    capsule = environment_capsule()
    env = store.environment(experiment.id)
    assert {key: env[key] for key in ("git_sha", "python", "packages", "host", "cpu_count")} == \
        {key: capsule[key] for key in ("git_sha", "python", "packages", "host", "cpu_count")}
    assert env["created_at"].tzinfo is not None
    assert store.environment(experiment.id + 999) == {}


def test_trial_upsert_is_idempotent(store: SQLStore, experiment, trial) -> None:
    assert trial.config == CONFIG and trial.info == {"note": "x"} and trial.group_name is None
    assert store.upsert_trial(experiment.id, "base", CONFIG, HASH, info={"note": "x"}) == trial
    assert store.trials(experiment.id) == [trial]
    n_params = len(store.params(experiment.id))
    changed = {**CONFIG, "optimizer": {"lr": 0.5}}
    updated = store.upsert_trial(experiment.id, "base", changed, "b" * 64, sweep_point={"optimizer.lr": 0.5},
                                 group_name="sweep")
    assert updated.id == trial.id and updated.config_hash == "b" * 64 and updated.group_name == "sweep"
    assert store.trials(experiment.id) == [updated] and updated.sweep_point == {"optimizer.lr": 0.5}
    params = dict((key, value) for _, key, value in store.params(experiment.id))
    assert params["optimizer.lr"] == 0.5 and "optimizer.schedule" not in params
    assert len(params) == n_params - 1


def test_json_columns_keep_nan_and_infinities(store: SQLStore, experiment) -> None:
    config = {"threshold": math.inf, "floor": -math.inf, "gain": math.nan}
    store.upsert_trial(experiment.id, "odd", config, HASH, sweep_point={"threshold": math.inf})
    [odd] = store.trials(experiment.id)
    assert odd.config["threshold"] == math.inf and odd.config["floor"] == -math.inf
    assert math.isnan(odd.config["gain"]) and odd.sweep_point == {"threshold": math.inf}


def test_params_are_flattened_and_typed(store: SQLStore, experiment, trial) -> None:
    params = {key: value for trial_id, key, value in store.params(experiment.id) if trial_id == trial.id}
    assert params == {
        "model.layers[0].kernel.tau_m": 10.0,
        "model.layers[0].kernel.type": "LIFKernel",
        "model.layers[0].out_features": 16.0,
        "model.layers[1].kernel.tau_m": 5.0,
        "model.layers[1].kernel.learn": True,
        "optimizer.lr": 1e-3,
        "optimizer.schedule": None,
        "tags": [],
        "extra": {},
    }
    assert isinstance(params["model.layers[1].kernel.learn"], bool)
    kinds = dict(execute_sql(store.url, "SELECT key, kind FROM param"))
    assert kinds["model.layers[0].kernel.tau_m"] == "number" and kinds["model.layers[0].kernel.type"] == "text"
    assert kinds["model.layers[1].kernel.learn"] == "bool" and kinds["optimizer.schedule"] == "null"
    assert kinds["tags"] == kinds["extra"] == "json"


# -- runs ---------------------------------------------------------------------------------------
def test_ensure_runs_is_idempotent(store: SQLStore, experiment, trial) -> None:
    first = store.ensure_runs(experiment.id, new_runs(trial, 3))
    assert [r.repeat for r in first] == [0, 1, 2]
    assert all(r.status is RunStatus.PENDING and r.attempts == 0 and r.trial_name == "base" for r in first)
    assert first[0].seed == 2**63 - 1
    again = store.ensure_runs(experiment.id, list(reversed(new_runs(trial, 4))))
    assert [r.repeat for r in again] == [3, 2, 1, 0]
    assert {r.id for r in again[1:]} == {r.id for r in first}
    assert len(store.runs(experiment.id)) == 4
    with pytest.raises(IntegrityError):
        execute_sql(store.url, "INSERT INTO run (experiment_id, trial_id, config_hash, repeat, seed, status, "
                    "created_at, output_dir, attempts) VALUES (:e, :t, :h, 0, 1, 'PENDING', '2024-01-01', 'x', 0)",
                    e=experiment.id, t=trial.id, h=HASH)


def test_claim_run_is_atomic_and_counts_attempts(store: SQLStore, experiment, trial) -> None:
    run = store.ensure_runs(experiment.id, new_runs(trial, 1))[0]
    attempt = store.claim_run(run.id, "host-a", 11)
    assert attempt is not None and attempt.number == 1 and attempt.host == "host-a" and attempt.finished_at is None
    assert store.claim_run(run.id, "host-b", 12) is None
    claimed = store.run(run.id)
    assert claimed.status is RunStatus.RUNNING and claimed.pid == 11 and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.heartbeat_at is not None

    store.finish_run(run.id, attempt.id, RunStatus.FAILED, error=ErrorInfo("ValueError", "boom", "tb"))
    second = store.claim_run(run.id, "host-b", 12)
    assert second is not None and second.number == 2
    rerun = store.run(run.id)
    assert rerun.attempts == 2 and rerun.error_type is None and rerun.finished_at is None
    store.finish_run(run.id, second.id, RunStatus.COMPLETED)
    assert store.claim_run(run.id, "host-c", 13) is None
    assert [a.exit_reason for a in store.attempts(run.id)] == ["FAILED", "COMPLETED"]


def test_finish_run_failed_records_error_summary_and_attempt(store: SQLStore, experiment, trial) -> None:
    run = store.ensure_runs(experiment.id, new_runs(trial, 1))[0]
    attempt = store.claim_run(run.id, "h", 1)
    store.finish_run(run.id, attempt.id, RunStatus.INTERRUPTED, summary={"best_val_acc": 0.5, "stale": 1.0})
    attempt = store.claim_run(run.id, "h", 2)
    traceback = "Traceback (most recent call last):\n" + "  frame\n" * 2000 + "FloatingPointError: loss is NaN"
    store.finish_run(run.id, attempt.id, RunStatus.FAILED, summary={"best_val_acc": 0.25, "final_loss": math.nan},
                     error=ErrorInfo("FloatingPointError", "loss is NaN", traceback), peak_rss_mb=321.5)
    failed = store.run(run.id)
    assert failed.status is RunStatus.FAILED and failed.error_type == "FloatingPointError"
    assert failed.error_message == "loss is NaN"
    assert failed.error_traceback.endswith("FloatingPointError: loss is NaN") and len(failed.error_traceback) == 4000
    assert failed.duration_s is not None and failed.duration_s >= 0 and failed.finished_at >= failed.started_at
    summary = {key: value for _, key, value in store.summaries(experiment.id)}
    assert summary.keys() == {"best_val_acc", "final_loss"}
    assert summary["best_val_acc"] == 0.25 and math.isnan(summary["final_loss"])
    last = store.attempts(run.id)[-1]
    assert (last.exit_reason, last.error_type, last.peak_rss_mb) == ("FAILED", "FloatingPointError", 321.5)
    assert last.finished_at is not None


def test_mark_stale_and_heartbeat(store: SQLStore, experiment, trial) -> None:
    old, alive, pending = store.ensure_runs(experiment.id, new_runs(trial, 3))
    store.claim_run(old.id, "h", 1)
    store.claim_run(alive.id, "h", 2)
    execute_sql(store.url, "UPDATE run SET heartbeat_at = '2000-01-01 00:00:00.000000' WHERE id = :id", id=old.id)
    store.heartbeat(alive.id)
    assert store.mark_stale(experiment.id, older_than_s=60) == [old.id]
    assert store.run(old.id).status is RunStatus.STALE
    assert store.run(alive.id).status is RunStatus.RUNNING and store.run(pending.id).status is RunStatus.PENDING
    assert store.attempts(old.id)[0].exit_reason == "STALE"
    assert store.claim_run(old.id, "h", 3).number == 2
    assert store.status_counts(experiment.id) == {"base": {"PENDING": 1, "RUNNING": 2}}


def test_a_live_local_worker_is_never_stale_by_heartbeat_age(store: SQLStore, experiment, trial) -> None:
    """On a loaded machine beats come late; a worker whose process is seen alive keeps its run."""
    local, gone, remote = store.ensure_runs(experiment.id, new_runs(trial, 3))
    for run, host, pid in ((local, "here", 1), (gone, "here", 2), (remote, "there", 3)):
        store.claim_run(run.id, host, pid)
    execute_sql(store.url, "UPDATE run SET heartbeat_at = '2000-01-01 00:00:00.000000'")
    seen = []

    def is_dead(host, pid, started):
        seen.append((host, pid, started is not None))
        return None if host != "here" else pid == 2

    assert store.mark_stale(experiment.id, 60, is_dead) == [gone.id, remote.id]
    assert sorted(seen) == [("here", 1, True), ("here", 2, True), ("there", 3, True)]
    assert store.run(local.id).status is RunStatus.RUNNING
    assert "worker process 2 on here is gone" in store.run(gone.id).error_message
    assert "no heartbeat" in store.run(remote.id).error_message


def test_process_is_dead_knows_live_dead_reused_and_remote_pids() -> None:
    import os
    import socket
    import subprocess
    import sys
    from datetime import datetime, timedelta, timezone

    from tools.processes import process_is_dead

    here, now = socket.gethostname(), datetime.now(timezone.utc)
    assert process_is_dead(here, os.getpid(), now) is False
    assert process_is_dead("another-host", os.getpid(), now) is None and process_is_dead(here, None) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_is_dead(here, child.pid, now) is True
    # a claim older than this process: the pid now belongs to a process started after the claim
    assert process_is_dead(here, os.getpid(), now - timedelta(days=365)) is True


def test_extend_runs_records_the_epochs_and_reopens_completed_runs(store: SQLStore, experiment, trial) -> None:
    done, pending = store.ensure_runs(experiment.id, new_runs(trial, 2))
    attempt = store.claim_run(done.id, "host", 1)
    store.finish_run(done.id, attempt.id, RunStatus.COMPLETED, summary={"epochs": 3.0})
    assert store.run(done.id).extended_epochs is None
    store.extend_runs([done.id, pending.id], 6)
    extended, still = store.run(done.id), store.run(pending.id)
    assert (extended.status, extended.extended_epochs) == (RunStatus.PENDING, 6)
    assert (still.status, still.extended_epochs) == (RunStatus.PENDING, 6)
    assert store.claim_run(done.id, "host", 2).number == 2  # claimable again: a second attempt
    assert dict((k, v) for r, k, v in store.summaries(experiment.id) if r == done.id) == {"epochs": 3.0}
    store.extend_runs([], 9)  # nothing to do


# -- metrics, summaries, artifacts --------------------------------------------------------------
def test_log_metrics_replaces_keeps_nan_inf_and_deletes(store: SQLStore, experiment, trial) -> None:
    run, other = store.ensure_runs(experiment.id, new_runs(trial, 2))
    for epoch in range(5):
        store.log_metrics(run.id, epoch, {"loss": 1.0 / (epoch + 1), "val_acc": 0.1 * epoch})
    store.log_metrics(run.id, 2, {"loss": 9.0, "val_acc": 0.2})  # a resumed run re-logs epoch 2
    store.log_metrics(other.id, 0, {"loss": math.nan, "up": math.inf, "down": -math.inf})
    rows = store.metrics(experiment.id)
    assert len(rows) == 5 * 2 + 3
    assert [(e, v) for r, k, e, v in rows if r == run.id and k == "loss"][2] == (2, 9.0)
    values = {key: value for r, key, _, value in rows if r == other.id}
    assert math.isnan(values["loss"]) and values["up"] == math.inf and values["down"] == -math.inf
    assert store.run(run.id).last_epoch == 4
    assert store.metrics(experiment.id, keys=["val_acc"], run_ids=[run.id]) == [
        (run.id, "val_acc", e, pytest.approx(0.1 * e)) for e in range(5)]
    assert execute_sql(store.url, "SELECT count(*) FROM metric WHERE value IS NULL") == [(1,)]

    assert store.delete_metrics_after(run.id, 1) == 6
    assert {e for r, _, e, _ in store.metrics(experiment.id) if r == run.id} == {0, 1}
    assert store.run(run.id).last_epoch == 1


def test_metric_keys_are_shared_between_stores(url: str, store: SQLStore, experiment, trial) -> None:
    run = store.ensure_runs(experiment.id, new_runs(trial, 1))[0]
    with SQLStore(url) as second:
        second.log_metrics(run.id, 0, {"a": 1.0, "b": 2.0})
    store.log_metrics(run.id, 1, {"b": 3.0, "a": 4.0})
    assert store.metrics(experiment.id) == [(run.id, "a", 0, 1.0), (run.id, "a", 1, 4.0),
                                            (run.id, "b", 0, 2.0), (run.id, "b", 1, 3.0)]


def test_failed_write_rolls_back_and_leaves_no_stale_cache(store: SQLStore, experiment, trial) -> None:
    run = store.ensure_runs(experiment.id, new_runs(trial, 1))[0]
    with pytest.raises(IntegrityError):  # no run 999: the foreign key fails, the new key is rolled back
        store.log_metrics(999, 0, {"new_key": 1.0})
    assert execute_sql(store.url, "SELECT count(*) FROM metric_key") == [(0,)]
    store.log_metrics(run.id, 0, {"new_key": 2.0})
    assert store.metrics(experiment.id) == [(run.id, "new_key", 0, 2.0)]


def test_artifacts(store: SQLStore, experiment, trial) -> None:
    run = store.ensure_runs(experiment.id, new_runs(trial, 1))[0]
    store.add_artifacts(run.id, [("checkpoint", "out/ckpt.pt", "f" * 64, 2**40), ("csv", "out/metrics.csv", "e" * 64, 10)])
    assert store.artifacts(run.id) == [("checkpoint", "out/ckpt.pt", "f" * 64, 2**40), ("csv", "out/metrics.csv",
                                                                                           "e" * 64, 10)]


def test_experiment_artifacts_reads_every_run_in_one_list(store: SQLStore, experiment, trial) -> None:
    first, second = store.ensure_runs(experiment.id, new_runs(trial, 2))
    other = store.open_experiment("other", "", 0, "cfg", {}, environment_capsule())
    other_run = store.ensure_runs(other.id, [NewRun(store.upsert_trial(other.id, "t", {}, "h").id, "h", 0, 1, "o")])[0]
    store.add_artifacts(second.id, [("log", "b/log.txt", "b" * 64, 3)])
    store.add_artifacts(first.id, [("log", "a/log.txt", "a" * 64, 1), ("csv", "a/metrics.csv", "c" * 64, 2)])
    store.add_artifacts(other_run.id, [("log", "o/log.txt", "o" * 64, 4)])
    assert store.experiment_artifacts(experiment.id) == [
        (first.id, "log", "a/log.txt", "a" * 64, 1), (first.id, "csv", "a/metrics.csv", "c" * 64, 2),
        (second.id, "log", "b/log.txt", "b" * 64, 3)]


# -- read-only access ---------------------------------------------------------------------------
def test_readonly_store_reads_but_cannot_write(url: str, store: SQLStore, experiment, trial) -> None:
    run = store.ensure_runs(experiment.id, new_runs(trial, 1))[0]
    store.log_metrics(run.id, 0, {"loss": 1.0})
    with SQLStore(url, readonly=True) as reader:
        assert reader.get_experiment("demo") == experiment
        assert reader.metrics(experiment.id) == [(run.id, "loss", 0, 1.0)]
        with pytest.raises(PermissionError):
            reader.log_metrics(run.id, 1, {"loss": 0.5})
        with pytest.raises(PermissionError):
            reader.open_experiment("other", "", 0, "", {}, {})
        with pytest.raises(Exception, match="readonly|read-only"), reader._engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM metric")
    assert len(store.metrics(experiment.id)) == 1

