"""A sweep on a Dask LocalCluster with two worker processes writing into PostgreSQL, one worker
killed (SIGKILL) in the middle of a run: the sweep still completes every run, the killed run resumes
from its checkpoint, and no metric row is missing or doubled. Runs when ``SPIKELAB_TEST_POSTGRES_URL``
names a server (CI starts one: .ci/postgres.sh)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from testkit import TINY_CONFIG, execute_sql, write_experiment

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 6


def test_dask_sweep_on_postgres_survives_a_killed_worker(tmp_path: Path, postgres_url: str) -> None:
    config = TINY_CONFIG.replace("epochs: 2", f"epochs: {EPOCHS}").replace("out_features: 16", "out_features: 64")
    trials = "- name: grid\n  sweep:\n    optimizer.lr: [0.005, 0.01, 0.02]\n"
    experiment = (f"name: dask_pg\nbase_dir: {tmp_path / 'out'}\nrepeat: 1\nheartbeat_s: 1.0\n"
                  f"db: {postgres_url}\nexecutor: {{backend: dask, n_jobs: 2}}\nmlflow: {{enabled: false}}\n")
    folder = write_experiment(tmp_path / "exp", config, trials, experiment=experiment)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    sweep = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", str(folder), "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
        try:  # a run that has logged a trained epoch, in a worker process of the cluster
            found = execute_sql(postgres_url, "SELECT id, pid FROM run WHERE status = 'RUNNING' AND last_epoch >= 1 "
                                              "ORDER BY id LIMIT 1")
        except Exception:  # noqa: BLE001 (the schema is not there yet)
            continue
        if found:
            killed = found[0]
            os.kill(killed[1], signal.SIGKILL)
    out, err = sweep.communicate(timeout=900)
    assert killed is not None, f"no run to kill was seen; the sweep printed:\n{out}\n{err[-2000:]}"
    assert sweep.returncode == 0, out + err[-3000:]

    statuses = execute_sql(postgres_url, "SELECT status, count(*) FROM run GROUP BY status")
    assert statuses == [("COMPLETED", 3)]
    attempts = dict(execute_sql(postgres_url, "SELECT run_id, count(*) FROM attempt GROUP BY run_id"))
    assert attempts[killed[0]] == 2 and sorted(attempts.values()) == [1, 1, 2]
    reasons = execute_sql(postgres_url, "SELECT exit_reason FROM attempt WHERE run_id = :id ORDER BY number",
                          id=killed[0])
    assert reasons == [("STALE",), ("COMPLETED",)]
    keys = execute_sql(postgres_url, "SELECT count(DISTINCT key_id) FROM metric")[0][0]
    per_run = execute_sql(postgres_url, "SELECT run_id, count(*), count(DISTINCT (key_id, epoch)) FROM metric "
                                        "GROUP BY run_id")
    assert sorted(rows for _, rows, _ in per_run) == [keys * (EPOCHS + 1)] * 3
    assert all(rows == distinct for _, rows, distinct in per_run)
