"""Bytes on disk per metric point: the metric table is a WITHOUT ROWID b-tree of small rows."""
from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from experiment.store import NewRun, SQLStore

pytestmark = pytest.mark.sqlite_only  # bytes in the SQLite file

RUNS, EPOCHS, KEYS = 100, 50, 20  # 100k points, one transaction per epoch


def test_metric_point_takes_at_most_40_bytes(tmp_path: Path) -> None:
    path = tmp_path / "spikelab.db"
    rng = random.Random(0)
    with SQLStore.create(f"sqlite:///{path}") as store:
        experiment = store.open_experiment("size", "", 0, "", {}, {})
        trial = store.upsert_trial(experiment.id, "base", {"x": 1}, "d" * 64)
        runs = store.ensure_runs(experiment.id, [NewRun(trial.id, "d" * 64, r, r, f"out/{r}") for r in range(RUNS)])
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size_before = path.stat().st_size
        for run in runs:
            for epoch in range(EPOCHS):
                store.log_metrics(run.id, epoch, {f"val_acc/label_{k}": rng.random() for k in range(KEYS)})
    points = RUNS * EPOCHS * KEYS
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("SELECT count(*) FROM metric").fetchone() == (points,)
        try:
            metric_bytes = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'metric'").fetchone()[0]
        except sqlite3.OperationalError:  # SQLite built without dbstat: the file grew by about as much
            metric_bytes = path.stat().st_size - size_before
    assert metric_bytes / points <= 40
