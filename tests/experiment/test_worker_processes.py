"""Local worker processes: a SIGTERM to one is recovered like a dead worker, a SIGTERM to the
parent still stops the sweep, and workers die with their parent and never claim a run after it."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest
from testkit import TINY_CONFIG, write_experiment

ROOT = Path(__file__).resolve().parents[2]


def start_sweep(tmp_path: Path, points: int, epochs: int) -> tuple[subprocess.Popen, list[str], str]:
    lrs = ", ".join(str(0.005 * (k + 1)) for k in range(points))
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG.replace("epochs: 2", f"epochs: {epochs}"),
                              f"- name: grid\n  sweep:\n    optimizer.lr: [{lrs}]\n",
                              experiment=f"name: workers\nbase_dir: {tmp_path / 'out'}\nrepeat: 1\n"
                                         "mlflow: {enabled: false}\nheartbeat_s: 1.0\n")
    cmd = [sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress", "--n-jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, cmd, f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}"


def rows(db: str, sql: str) -> list[tuple]:
    with sqlite3.connect(db[len("sqlite:///"):]) as con:
        return con.execute(sql).fetchall()


def running_workers(db: str, parent: int, count: int, min_epoch: int = 1, timeout_s: float = 240) -> list[int]:
    """Pids of ``count`` worker processes (not ``parent``) whose runs are RUNNING past ``min_epoch``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            found = rows(db, "SELECT r.pid FROM run r JOIN metric m ON m.run_id = r.id WHERE r.status = 'RUNNING' "
                             f"GROUP BY r.id HAVING MAX(m.epoch) >= {min_epoch}")
        except sqlite3.OperationalError:
            continue
        pids = [pid for (pid,) in found if pid != parent]
        if len(pids) >= count:
            return pids
    raise AssertionError(f"fewer than {count} runs reached epoch {min_epoch}")


def assert_every_run_completed_once(db: str, runs: int, epochs: int) -> None:
    assert [s for (s,) in rows(db, "SELECT status FROM run")] == ["COMPLETED"] * runs
    keys = rows(db, "SELECT COUNT(*) FROM metric_key")[0][0]
    assert rows(db, "SELECT COUNT(*) FROM metric")[0][0] == runs * (epochs + 1) * keys
    assert rows(db, "SELECT COUNT(*) FROM (SELECT 1 FROM metric GROUP BY run_id, epoch, key_id "
                    "HAVING COUNT(*) > 1)")[0][0] == 0
    assert rows(db, "PRAGMA integrity_check")[0][0] == "ok"


@pytest.mark.slow
def test_sigterm_to_one_worker_is_recovered_and_the_sweep_completes(tmp_path):
    proc, _, db = start_sweep(tmp_path, points=3, epochs=6)
    victim = running_workers(db, proc.pid, 1)[0]
    os.kill(victim, signal.SIGTERM)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert_every_run_completed_once(db, 3, 6)
    reasons = [r for (r,) in rows(db, "SELECT exit_reason FROM attempt ORDER BY id")]
    assert "INTERRUPTED" in reasons and reasons.count("COMPLETED") == 3, reasons  # the victim recorded its run
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_sigterm_to_the_parent_still_stops_the_whole_sweep(tmp_path):
    proc, _, db = start_sweep(tmp_path, points=3, epochs=30)
    running_workers(db, proc.pid, 2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert rows(db, "SELECT COUNT(*) FROM run WHERE status = 'RUNNING'")[0][0] == 0
    assert rows(db, "SELECT COUNT(*) FROM attempt WHERE finished_at IS NULL")[0][0] == 0


@pytest.mark.slow
def test_workers_die_with_their_killed_parent_and_claim_nothing_after_it(tmp_path):
    proc, cmd, db = start_sweep(tmp_path, points=6, epochs=8)
    running_workers(db, proc.pid, 2, min_epoch=0)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children
    proc.kill()  # kill -9 of the main process mid-sweep
    killed_at = datetime.now(timezone.utc).replace(tzinfo=None)  # the database keeps UTC without a zone
    proc.communicate(timeout=60)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]
    started = [datetime.fromisoformat(s) for (s,) in rows(db, "SELECT started_at FROM attempt")]
    assert started and max(started) <= killed_at, (started, killed_at)
    assert rows(db, "SELECT COUNT(*) FROM run WHERE status = 'PENDING'")[0][0] > 0  # the kill came mid-sweep
    rerun = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_every_run_completed_once(db, 6, 8)
