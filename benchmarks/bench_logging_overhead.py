"""Per-epoch logging overhead as a fraction of run time, for the database and the MLflow mirror.

    python benchmarks/bench_logging_overhead.py [--epochs 10] [--threads 2]

Trains one run of the quick tour (configs/default: Digits, LIF 128, T = 20) with the DBLogger
(one transaction per epoch into a fresh SQLite database) and the MLflow mirror (one log_batch
per epoch into a fresh SQLite tracking store), timing every hook call of each callback. Reports
each writer's per-epoch time (``on_epoch_end``) and its one-off start/end time separately, and
its share of the run time without any writer (the run's wall time minus both writers' time).
Goal for the database: < 1%.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common  # noqa: F401
import torch

from pipeline.callbacks.base import Callback


class Timed(Callback):
    """Delegates every hook to ``inner`` and adds up the seconds spent there."""

    def __init__(self, inner: Callback):
        self.inner, self.order = inner, inner.order
        self.epochs = self.once = 0.0  # seconds in on_epoch_end / in the other hooks

    def _call(self, hook: str, *args):
        t0 = time.perf_counter()
        getattr(self.inner, hook)(*args)
        seconds = time.perf_counter() - t0
        if hook == "on_epoch_end":
            self.epochs += seconds
        else:
            self.once += seconds

    @property
    def seconds(self) -> float:
        return self.epochs + self.once

    def on_fit_start(self, state):
        self._call("on_fit_start", state)

    def on_epoch_end(self, state, epoch, metrics):
        self._call("on_epoch_end", state, epoch, metrics)

    def on_fit_end(self, state):
        self._call("on_fit_end", state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import pipeline  # noqa: F401
    from experiment.callbacks import DBLogger
    from experiment.mlflow_mirror import MLflowCallback, ensure_parent_runs
    from experiment.runner import build_pipeline
    from experiment.store import NewRun, SQLStore
    from settings.resolve import resolve_experiment

    trial = resolve_experiment(common.ROOT / "configs" / "default", [f"epochs={args.epochs}"]).trials[0]
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLStore.create(f"sqlite:///{tmp}/spikelab.db")
        exp = store.open_experiment("bench", "", 0, "", {}, {})
        t = store.upsert_trial(exp.id, trial.name, trial.config, "0" * 64)
        (run,) = store.ensure_runs(exp.id, [NewRun(t.id, "0" * 64, 0, 0, tmp)])
        store.claim_run(run.id, "host", 1)
        uri = f"sqlite:///{tmp}/mlflow.db"
        parents = ensure_parent_runs(uri, "bench", {trial.name: trial.config})
        db_cb = Timed(DBLogger(store, run.id))
        ml_cb = Timed(MLflowCallback(uri, "bench", parents[trial.name], "run", {"a": 1}))
        pipe = build_pipeline(trial.config)
        t0 = time.perf_counter()
        result = pipe.fit(seed=0, run_dir=Path(tmp) / "run", callbacks=[db_cb, ml_cb])
        total = time.perf_counter() - t0
        keys = len(result.history[-1]) - 1
        store.close()
    epochs = len(result.history)
    bare = total - db_cb.seconds - ml_cb.seconds
    print(f"one run: {epochs} evaluated epochs x {keys} metrics, {total:.2f} s in all, "
          f"{bare:.2f} s without the writers\n")
    print("| writer | time per epoch | start + end (once) | share of the run without writers |")
    print("|---|---|---|---|")
    for name, cb in (("Spikelab DBLogger (SQLite)", db_cb), ("MLflow mirror (log_batch, SQLite)", ml_cb)):
        print(f"| {name} | {cb.epochs / epochs * 1e3:.2f} ms | {cb.once * 1e3:.1f} ms | "
              f"{100 * cb.seconds / bare:.2f}% |")


if __name__ == "__main__":
    main()
