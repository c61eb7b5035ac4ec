"""Ctrl-C on a parallel sweep: exit 130, no run left RUNNING, and the next run finishes them."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, sigint_as_in_a_terminal, write_experiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ctrl_c_on_two_workers_leaves_no_run_running(tmp_path: Path):
    config = TINY_CONFIG.replace("epochs: 2", "epochs: 40")
    folder = write_experiment(tmp_path / "exp", config,
                              trials="- name: a\n- name: b\n  settings: {optimizer: {lr: 0.02}}\n",
                              experiment=f"name: par\nbase_dir: {tmp_path / 'out'}\nrepeat: 1\n")
    cmd = [sys.executable, str(ROOT / "main.py"), "run", str(folder), "--n-jobs", "2", "--no-progress", "--no-mlflow"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=sigint_as_in_a_terminal)
    path = tmp_path / "out" / "spikelab.db"
    deadline = time.time() + 240
    while time.time() < deadline:  # both runs past epoch 2
        time.sleep(0.3)
        try:
            with sqlite3.connect(path) as con:
                rows = con.execute("SELECT COUNT(*) FROM run WHERE status = 'RUNNING' AND last_epoch >= 2").fetchone()
            if rows[0] == 2:
                break
        except sqlite3.OperationalError:
            pass
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    with sqlite3.connect(path) as con:
        statuses = [r[0] for r in con.execute("SELECT status FROM run ORDER BY id")]
        open_attempts = con.execute("SELECT COUNT(*) FROM attempt WHERE finished_at IS NULL").fetchone()[0]
    assert statuses == ["INTERRUPTED", "INTERRUPTED"] and open_attempts == 0, (statuses, err[-2000:])
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    with sqlite3.connect(path) as con:
        assert [r[0] for r in con.execute("SELECT status FROM run")] == ["COMPLETED", "COMPLETED"]
        keys = con.execute("SELECT COUNT(*) FROM metric_key").fetchone()[0]
        assert con.execute("SELECT COUNT(*) FROM metric").fetchone()[0] == 2 * 41 * keys
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
