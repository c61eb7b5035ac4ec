"""Several processes on one SQLite experiment database: `run` commands started together on a fresh
database, plain sqlite3 connections, pandas readers and `status` commands opening and closing the
file all the time. Nothing may be lost or doubled: every run executes exactly once (one attempt),
every metric row exists once, both databases pass ``PRAGMA integrity_check``."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, write_experiment

ROOT = Path(__file__).resolve().parents[2]
TRIALS = "- name: a\n- name: b\n  settings: {optimizer: {lr: 0.02}}\n"
EPOCHS = 2  # TINY_CONFIG: metric rows for epochs 0..2


def make_experiment(tmp_path: Path, mlflow: bool) -> tuple[Path, Path]:
    out = tmp_path / "out"
    experiment = (f"name: shared\nbase_dir: {out}\nrepeat: 2\nheartbeat_s: 1.0\n"
                  f"mlflow: {{enabled: {'true' if mlflow else 'false'}}}\n")
    return write_experiment(tmp_path / "exp", TINY_CONFIG, TRIALS, experiment=experiment), out / "spikelab.db"


class Readers:
    """Threads that open, query and close the database file over and over while it is written:
    plain sqlite3 (as a researcher's shell would), pandas, and ``main.py status`` subprocesses."""

    def __init__(self, db: Path, env: dict[str, str]) -> None:
        self.db, self.env, self.stop = db, env, threading.Event()
        self.reads, self.errors = 0, []
        self.threads = [threading.Thread(target=target, daemon=True)
                        for target in (self._sqlite, self._sqlite, self._pandas, self._status)]

    def __enter__(self) -> "Readers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _loop(self, read) -> None:
        while not self.stop.is_set():
            if self.db.is_file():
                try:
                    read()
                    self.reads += 1
                except Exception as exc:  # noqa: BLE001 (busy/locked, or no schema yet, is a reader's normal life)
                    if "locked" not in str(exc) and "no such table" not in str(exc):
                        self.errors.append(repr(exc))
            time.sleep(0.02)

    def _sqlite(self) -> None:
        def read() -> None:
            connection = sqlite3.connect(self.db, timeout=30)
            try:
                connection.execute("SELECT count(*) FROM run").fetchall()
                connection.execute("SELECT count(*) FROM metric").fetchall()
            finally:
                connection.close()

        self._loop(read)

    def _pandas(self) -> None:
        import pandas as pd

        def read() -> None:
            connection = sqlite3.connect(self.db, timeout=30)
            try:
                pd.read_sql_query("SELECT run_id, epoch, value FROM metric", connection)
            finally:
                connection.close()

        self._loop(read)

    def _status(self) -> None:
        def read() -> None:
            done = subprocess.run([sys.executable, str(ROOT / "main.py"), "status", "--db", f"sqlite:///{self.db}"],
                                  capture_output=True, text=True, env=self.env, timeout=120)
            if done.returncode not in (0, 2):  # 2: the schema is not there yet
                self.errors.append(f"status exit {done.returncode}: {done.stderr[-500:]}")

        self._loop(read)


def run_together(folder: Path, n: int, env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    processes = [subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(n)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=900)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def check_exit_codes(results: list[subprocess.CompletedProcess]) -> None:
    """0 when every run was COMPLETED at the end; 3 (with the reason) when a process ended while
    another still ran some; the one that finished the last run saw them all completed."""
    for result in results:
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.returncode == 0 or (result.returncode == 3 and "once they finish" in result.stdout), (
            result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert 0 in [result.returncode for result in results]


def check_exactly_once(db: Path, runs: int) -> None:
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("SELECT count(*) FROM experiment").fetchone() == (1,)
        states = connection.execute("SELECT status, count(*) FROM run GROUP BY status").fetchall()
        assert states == [("COMPLETED", runs)]
        attempts = connection.execute("SELECT run_id, count(*) FROM attempt GROUP BY run_id").fetchall()
        assert sorted(count for _, count in attempts) == [1] * runs, (
            "a run was executed more than once: " + repr(connection.execute(
                "SELECT run_id, number, pid, exit_reason, error_message FROM attempt").fetchall()))
        keys = connection.execute("SELECT count(DISTINCT key_id) FROM metric").fetchone()[0]
        assert keys > 5
        per_run = connection.execute("SELECT run_id, count(*) FROM metric GROUP BY run_id").fetchall()
        assert sorted(count for _, count in per_run) == [keys * (EPOCHS + 1)] * runs
        assert connection.execute("SELECT count(*) FROM (SELECT 1 FROM metric GROUP BY run_id, key_id, epoch "
                                  "HAVING count(*) > 1)").fetchone() == (0,)
    finally:
        connection.close()


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def run_with_readers(tmp_path: Path, commands: int, mlflow: bool) -> tuple[Path, Path, list[subprocess.CompletedProcess]]:
    """``commands`` runs of one fresh experiment started together while the readers work; each
    checked: exit codes, no reader error, every run executed exactly once."""
    folder, db = make_experiment(tmp_path, mlflow=mlflow)
    with Readers(db, child_env()) as readers:
        results = run_together(folder, commands, child_env())
    check_exit_codes(results)
    assert readers.errors == [] and readers.reads > 10
    check_exactly_once(db, runs=4)
    return folder, db, results


def test_two_runs_and_readers_on_one_database_lose_and_repeat_nothing(tmp_path: Path) -> None:
    _, _, results = run_with_readers(tmp_path, 2, mlflow=False)
    done = sum(result.stdout.count("done ") for result in results)
    assert done == 4, "each run is reported done by the one process that ran it"


@pytest.mark.slow
def test_eight_first_runs_at_once_with_mlflow_and_readers(tmp_path: Path) -> None:
    folder, db, _ = run_with_readers(tmp_path, 8, mlflow=True)
    mlflow_db = db.parent / "mlflow.db"
    connection = sqlite3.connect(mlflow_db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        children = connection.execute("SELECT name FROM runs WHERE lifecycle_stage = 'active' AND name LIKE "
                                      "'%/repeat_%'").fetchall()
        assert sorted(children) == [(f"{t}/repeat_{r}",) for t in "ab" for r in range(2)]
    finally:
        connection.close()
    # the mirror is usable afterwards: a later run on the same stores works
    again = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress"],
                           capture_output=True, text=True, env=child_env(), timeout=600)
    assert again.returncode == 0 and "skipping 4 completed run(s)" in again.stdout, again.stderr[-2000:]
