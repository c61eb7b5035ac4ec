"""Sweeps, searches and parallel runs that survive crashes."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, write_experiment

import main
from experiment.store import RunStatus, SQLStore

ROOT = Path(__file__).resolve().parents[2]


def make(tmp_path: Path, trials: str, config: str = TINY_CONFIG, extra: str = "") -> tuple[Path, str]:
    folder = write_experiment(tmp_path / "exp", config, trials,
                              experiment=f"name: sweep\nbase_dir: {tmp_path / 'out'}\nrepeat: 1\n"
                                         f"mlflow: {{enabled: false}}\nheartbeat_s: 1.0\n{extra}")
    return folder, f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}"


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        return con.execute(sql).fetchall()


def test_optuna_search_records_every_point_and_resumes(tmp_path, capsys):
    trials = """\
- name: tpe
  search:
    method: tpe
    n_trials: 4
    params:
      optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}
      model.layers[0].out_features: {randint: [8, 24]}
    objectives:
      - {metric: best_val_acc, direction: maximize}
      - {metric: final_spikes_per_sample, direction: minimize}
"""
    folder, db = make(tmp_path, trials, TINY_CONFIG.replace("epochs: 2", "epochs: 1"))
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    store = SQLStore(db, readonly=True)
    exp = store.get_experiment("sweep")
    points = [t for t in store.trials(exp.id) if t.group_name == "tpe"]
    assert [t.name for t in points] == ["tpe-0", "tpe-1", "tpe-2", "tpe-3"]
    assert all(1e-3 <= t.sweep_point["optimizer.lr"] <= 1e-1 for t in points)
    widths = {t.config["model"]["layers"][0]["out_features"] for t in points}
    assert all(8 <= w <= 24 for w in widths)
    assert [r.status for r in store.runs(exp.id)] == [RunStatus.COMPLETED] * 4
    trial_of = {r.id: r.trial_name for r in store.runs(exp.id)}
    stored = {name: {} for name in trial_of.values()}
    for run_id, key, value in store.summaries(exp.id):
        stored[trial_of[run_id]][key] = value
    store.close()
    # the Pareto front by hand from the stored summaries (one run per point): maximize best_val_acc,
    # minimize final_spikes_per_sample; a point is dominated by one at least as good in both, better in one
    scores = {name: (v["best_val_acc"], -v["final_spikes_per_sample"]) for name, v in stored.items()}
    expected = {name for name, (a, b) in scores.items()
                if not any(a2 >= a and b2 >= b and (a2 > a or b2 > b) for a2, b2 in scores.values())}
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 0  # the study is rebuilt; nothing new to ask
    assert len(rows(db, "SELECT id FROM run")) == 4
    capsys.readouterr()
    assert main.main(["show", "sweep", "--db", db, "--json"]) == 0
    front = json.loads(capsys.readouterr().out)["searches"]["tpe"]["front"]
    assert sorted(p["trial"] for p in front) == sorted(expected)
    for point in front:
        assert point["best_val_acc_mean"] == stored[point["trial"]]["best_val_acc"]
        assert point["final_spikes_per_sample_mean"] == stored[point["trial"]]["final_spikes_per_sample"]
    assert [p["best_val_acc_mean"] for p in front] == sorted((p["best_val_acc_mean"] for p in front), reverse=True)


def test_search_space_is_validated_before_anything_runs(tmp_path, capsys):
    trials = "- name: tpe\n  search: {method: tpe, n_trials: 2, params: {optimizer.lrr: {uniform: [0.1, 0.2]}}}\n"
    folder, db = make(tmp_path, trials)
    assert main.main(["run", str(folder)]) == 2
    assert "optimizer.lrr is not a parameter of Adam" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failing_points_of_a_parallel_sweep_do_not_stop_the_others(tmp_path, capsys):
    trials = """\
- name: grid
  sweep:
    optimizer.lr: [0.01, 1.0e+38]
    model.layers[0].out_features: [8, 16]
"""
    folder, db = make(tmp_path, trials)
    assert main.main(["run", str(folder), "--no-progress", "--n-jobs", "2"]) == 3
    out = capsys.readouterr().out
    assert out.count("FAILED grid-lr=1e+38") == 4  # each failed point: once when it fails, once in the closing recap
    status = dict(rows(db, "SELECT t.name, r.status FROM run r JOIN trial t ON t.id = r.trial_id"))
    assert sorted(status.values()) == ["COMPLETED", "COMPLETED", "FAILED", "FAILED"]
    assert main.main(["status", "sweep", "--db", db]) == 0
    reasons = capsys.readouterr().out
    assert reasons.count("FAILED grid-lr=1e+38") == 2 and "RuntimeError: value cannot be converted" in reasons
    csv_path = tmp_path / "points.csv"
    assert main.main(["export", "sweep", "--db", db, "--csv", str(csv_path)]) == 0
    import pandas as pd

    points = pd.read_csv(csv_path)
    assert len(points) == 4 and {"final_val_acc_mean", "final_val_acc_median", "final_val_acc_n"} <= set(points)
    assert main.main(["export", "sweep", "--db", db, "--csv", str(csv_path), "--per-run"]) == 0
    assert len(pd.read_csv(csv_path)) == 4


def test_several_jobs_with_one_run_left_run_it_in_this_process(tmp_path):
    """joblib runs a lone task in the submitting process: that process is no orphaned worker (it
    once took itself for one and ended with exit 1 before claiming the run)."""
    folder, db = make(tmp_path, "- name: only\n", TINY_CONFIG.replace("epochs: 2", "epochs: 1"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress", "--n-jobs", "2"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(db, "SELECT status FROM run") == [("COMPLETED",)]


@pytest.mark.slow
def test_killed_worker_is_resumed_and_nothing_is_lost(tmp_path):
    """A 2-worker sweep; one worker gets SIGKILL mid-run; the same command again completes it all."""
    config = TINY_CONFIG.replace("epochs: 2", "epochs: 8")
    trials = "- name: grid\n  sweep:\n    optimizer.lr: [0.005, 0.01, 0.02, 0.03]\n"
    folder, db = make(tmp_path, trials, config)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress", "--n-jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim, deadline = None, time.time() + 180
    while victim is None and time.time() < deadline:
        time.sleep(0.3)
        try:
            running = rows(db, "SELECT r.pid, MAX(m.epoch) FROM run r JOIN metric m ON m.run_id = r.id "
                               "WHERE r.status = 'RUNNING' GROUP BY r.id")
        except sqlite3.OperationalError:
            continue
        victim = next((pid for pid, epoch in running if epoch is not None and epoch >= 2 and pid != proc.pid), None)
    assert victim is not None, "no run reached epoch 2"
    os.kill(victim, signal.SIGKILL)
    first_out, _ = proc.communicate(timeout=600)
    assert proc.returncode in (0, 3), first_out
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert [s for (s,) in rows(db, "SELECT status FROM run")] == ["COMPLETED"] * 4
    keys = rows(db, "SELECT COUNT(*) FROM metric_key")[0][0]
    assert rows(db, "SELECT COUNT(*) FROM metric")[0][0] == 4 * 9 * keys  # epochs 0..8, every key, once
    assert rows(db, "SELECT COUNT(*) FROM (SELECT 1 FROM metric GROUP BY run_id, epoch, key_id "
                    "HAVING COUNT(*) > 1)")[0][0] == 0
    reasons = [r for (r,) in rows(db, "SELECT exit_reason FROM attempt ORDER BY id")]
    assert "STALE" in reasons and reasons.count("COMPLETED") == 4
    assert rows(db, "PRAGMA integrity_check")[0][0] == "ok"


@pytest.mark.slow
def test_eight_workers_write_one_database(tmp_path, capsys):
    config = TINY_CONFIG.replace("epochs: 2", "epochs: 3").replace("out_features: 16", "out_features: 4")
    trials = "- name: grid\n  sweep:\n    optimizer.lr: {linspace: [0.001, 0.02, 8]}\n"
    folder, db = make(tmp_path, trials, config)
    assert main.main(["run", str(folder), "--no-progress", "--n-jobs", "8"]) == 0
    assert [s for (s,) in rows(db, "SELECT status FROM run")] == ["COMPLETED"] * 8
    assert rows(db, "SELECT COUNT(*) FROM run WHERE error_type IS NOT NULL")[0][0] == 0
    keys = rows(db, "SELECT COUNT(*) FROM metric_key")[0][0]
    assert rows(db, "SELECT COUNT(*) FROM metric")[0][0] == 8 * 4 * keys
    assert len({pid for (pid,) in rows(db, "SELECT pid FROM attempt")}) > 1  # really several processes
    assert rows(db, "PRAGMA integrity_check")[0][0] == "ok"


@pytest.mark.slow
def test_dask_executor_runs_the_same_runs(tmp_path, capsys):
    config = TINY_CONFIG.replace("epochs: 2", "epochs: 1")
    folder, db = make(tmp_path, "- name: grid\n  sweep:\n    optimizer.lr: [0.005, 0.01]\n", config,
                      extra="executor: {backend: dask, n_jobs: 2}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    assert [s for (s,) in rows(db, "SELECT status FROM run")] == ["COMPLETED"] * 2
    keys = rows(db, "SELECT COUNT(*) FROM metric_key")[0][0]
    assert rows(db, "SELECT COUNT(*) FROM metric")[0][0] == 2 * 2 * keys
