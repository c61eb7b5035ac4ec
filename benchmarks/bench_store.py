"""Metric ingest into the experiment database, beside MLflow's SQLite tracking store.

    python benchmarks/bench_store.py [--repeats 3] [--no-mlflow] [--postgres ADMIN_URL]

Spikelab: ``SQLStore.log_metrics`` with one transaction per call (= one epoch), into a fresh
SQLite file; measured with 20 keys per epoch (200 runs x 100 epochs) and with 200 keys per epoch
(20 runs x 100 epochs, e.g. per-label metrics), 400k points each. Bytes per point: the metric
table's pages (``dbstat``) after a WAL checkpoint, divided by the points. MLflow: the same kind of
data through ``MlflowClient().log_batch`` (one batch per epoch) into ``sqlite:///<tmp>/mlflow.db``,
smaller (20 runs x 50 epochs x 20 keys) because it is much slower. ``--postgres`` adds the same
Spikelab cases on a PostgreSQL server (a fresh database ``spikelab_bench`` created through
``ADMIN_URL`` and dropped afterwards; bytes per point from ``pg_total_relation_size``). Run
creation and schema set-up are outside the timed part. Goal: >= 200k points/s and <= 40 bytes
per point.
"""
from __future__ import annotations

import argparse
import logging
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the project root on sys.path)

from experiment.store import NewRun, SQLStore
from experiment.store.capsule import cpu_model


def table_bytes(path: Path, tables: tuple[str, ...]) -> int | None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try:
            marks = ",".join("?" * len(tables))
            return conn.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})", tables).fetchone()[0]
        except sqlite3.OperationalError:  # SQLite without dbstat
            return None


def log_into(url: str, runs: int, epochs: int, keys: int) -> tuple[float, float]:
    """Wall and CPU seconds to log runs x epochs x keys points into a fresh store at ``url``."""
    rng = random.Random(0)
    names = [f"val_acc/label_{k}" for k in range(keys)]
    with SQLStore.create(url) as store:
        experiment = store.open_experiment("bench", "", 0, "", {}, {})
        trial = store.upsert_trial(experiment.id, "base", {"x": 1}, "0" * 64)
        records = store.ensure_runs(experiment.id, [NewRun(trial.id, "0" * 64, r, r, str(r)) for r in range(runs)])
        batches = [[{name: rng.random() for name in names} for _ in range(epochs)] for _ in range(2)]
        wall, cpu = time.perf_counter(), time.process_time()
        for i, run in enumerate(records):
            for epoch, values in enumerate(batches[i % 2]):
                store.log_metrics(run.id, epoch, values)
        return time.perf_counter() - wall, time.process_time() - cpu


def bench_spikelab(runs: int, epochs: int, keys: int) -> dict[str, float]:
    """Seconds (wall and CPU) to log runs x epochs x keys points into SQLite, and bytes per point."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spikelab.db"
        wall, cpu = log_into(f"sqlite:///{path}", runs, epochs, keys)
        size = table_bytes(path, ("metric",))
    points = runs * epochs * keys
    return {"points": points, "wall": wall, "cpu": cpu, "bytes": size / points if size else float("nan")}


def bench_postgres(admin_url: str, runs: int, epochs: int, keys: int) -> dict[str, float]:
    """The same into a fresh PostgreSQL database (created and dropped through ``admin_url``)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS spikelab_bench"))
            conn.execute(text("CREATE DATABASE spikelab_bench"))
        url = admin.url.set(database="spikelab_bench")
        wall, cpu = log_into(url.render_as_string(hide_password=False), runs, epochs, keys)
        engine = create_engine(url)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_total_relation_size('metric')")).scalar()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE spikelab_bench WITH (FORCE)"))
    finally:
        admin.dispose()
    points = runs * epochs * keys
    return {"points": points, "wall": wall, "cpu": cpu, "bytes": size / points}


def bench_mlflow(runs: int, epochs: int, keys: int) -> dict[str, float]:
    import mlflow  # noqa: F401  (lazy: only this benchmark needs it)
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)
    rng = random.Random(0)
    names = [f"val_acc/label_{k}" for k in range(keys)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mlflow.db"
        client = MlflowClient(tracking_uri=f"sqlite:///{path}")
        experiment_id = client.create_experiment("bench", artifact_location=f"{folder}/artifacts")
        run_ids = [client.create_run(experiment_id).info.run_id for _ in range(runs)]
        wall, cpu = time.perf_counter(), time.process_time()
        for run_id in run_ids:
            for epoch in range(epochs):
                stamp = int(time.time() * 1000)
                client.log_batch(run_id, metrics=[Metric(name, rng.random(), stamp, epoch) for name in names])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = table_bytes(path, ("metrics", "latest_metrics"))
    points = runs * epochs * keys
    return {"points": points, "wall": wall, "cpu": cpu, "bytes": size / points if size else float("nan")}


def median_of(fn, repeats: int, *args: int) -> dict[str, float]:
    samples = [fn(*args) for _ in range(repeats)]
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="also measure a PostgreSQL server")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}; SQLite {sqlite3.sqlite_version}; median of {args.repeats}\n")
    cases = [("Spikelab `log_metrics`, 20 points per epoch", bench_spikelab, (200, 100, 20)),
             ("Spikelab `log_metrics`, 200 points per epoch", bench_spikelab, (20, 100, 200))]
    if args.postgres:
        cases += [(f"Spikelab `log_metrics` on PostgreSQL, {keys} points per epoch",
                   lambda *shape: bench_postgres(args.postgres, *shape), (runs, 100, keys))
                  for runs, keys in ((50, 20), (10, 200))]
    if not args.no_mlflow:
        cases.append(("MLflow `log_batch`, 20 points per epoch", bench_mlflow, (20, 50, 20)))
    print("| writer | runs x epochs x keys | points/s (wall) | points/s (CPU) | transactions/s | bytes/point |")
    print("|---|---|---|---|---|---|")
    for label, fn, shape in cases:
        r = median_of(fn, args.repeats, *shape)
        print(f"| {label} | {' x '.join(map(str, shape))} | {r['points'] / r['wall']:,.0f} | "
              f"{r['points'] / r['cpu']:,.0f} | {shape[0] * shape[1] / r['wall']:,.0f} | {r['bytes']:.1f} |")


if __name__ == "__main__":
    main()
