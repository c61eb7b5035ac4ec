"""Per-epoch logging overhead as a fraction of run time: the database, the MLflow mirror and the
``loggers`` of experiment.yaml (TensorBoard, W&B offline, the epoch profiler).

    python benchmarks/bench_logging_overhead.py [--epochs 10] [--threads 2]

Trains one run of the quick tour (configs/default: Digits, LIF 128, T = 20) with the DBLogger
(one transaction per epoch into a fresh SQLite database), the MLflow mirror (one log_batch
per epoch into a fresh SQLite tracking store), the TensorBoard writer (every metric, histograms
every 5 epochs, a flush per epoch) and, when wandb is installed, a W&B offline run, timing every
hook call of each callback. Reports each writer's per-epoch time (``on_epoch_end``) and its
one-off start/end time separately, and its share of the run time without any writer (the run's
wall time minus all writers' time). Goal for the database: < 1%.

The profiler costs only the epochs it profiles, so it is measured in a second run of its own
(``profile: {epochs: [2], steps: 20}``): the profiled epoch's ``epoch_time_s`` against the
median of the others, and the time its hooks take to write ``profiler/epoch_2/``.
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

    def on_epoch_start(self, state, epoch):
        self._call("on_epoch_start", state, epoch)

    def on_batch_end(self, state, batch, result):
        self._call("on_batch_end", state, batch, result)

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
    import importlib.util
    import os
    import statistics

    import pipeline  # noqa: F401
    from experiment.callbacks import DBLogger
    from experiment.loggers.profiler import EpochProfiler
    from experiment.loggers.tensorboard import TensorBoardLogger
    from experiment.mlflow_mirror import MLflowCallback, ensure_parent_runs
    from experiment.runner import build_pipeline
    from experiment.store import NewRun, SQLStore
    from settings.resolve import resolve_experiment

    trial = resolve_experiment(common.ROOT / "configs" / "default", [f"epochs={args.epochs}"]).trials[0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("WANDB_DIR", tmp)  # W&B's caches stay in the temporary folder
        for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            os.environ[name] = f"{tmp}/wandb_home"
        store = SQLStore.create(f"sqlite:///{tmp}/spikelab.db")
        exp = store.open_experiment("bench", "", 0, "", {}, {})
        t = store.upsert_trial(exp.id, trial.name, trial.config, "0" * 64)
        (run,) = store.ensure_runs(exp.id, [NewRun(t.id, "0" * 64, 0, 0, tmp)])
        store.claim_run(run.id, "host", 1)
        uri = f"sqlite:///{tmp}/mlflow.db"
        parents = ensure_parent_runs(uri, "bench", {trial.name: trial.config})
        run_dir = Path(tmp) / "run"
        writers = [("Spikelab DBLogger (SQLite)", Timed(DBLogger(store, run.id))),
                   ("MLflow mirror (log_batch, SQLite)", Timed(MLflowCallback(uri, "bench", parents[trial.name], "run",
                                                                              {"a": 1}))),
                   ("TensorBoard writer (scalars, histograms every 5 epochs)",
                    Timed(TensorBoardLogger(run_dir / "tb", 5, trial.config)))]
        if importlib.util.find_spec("wandb") is not None:
            from experiment.loggers.wandb_run import WandbLogger

            writers.append(("W&B offline run", Timed(WandbLogger(run_dir, "bench", "offline", "bench", trial.name,
                                                                 "run", trial.config))))
        pipe = build_pipeline(trial.config)
        t0 = time.perf_counter()
        result = pipe.fit(seed=0, run_dir=run_dir, callbacks=[cb for _, cb in writers])
        total = time.perf_counter() - t0
        keys = len(result.history[-1]) - 1
        store.close()

        profiler = Timed(EpochProfiler(Path(tmp) / "profiled" / "profiler", epochs=[2], steps=20))
        profiled = build_pipeline(trial.config).fit(seed=0, run_dir=Path(tmp) / "profiled", callbacks=[profiler])
    epochs = len(result.history)
    bare = total - sum(cb.seconds for _, cb in writers)
    print(f"one run: {epochs} evaluated epochs x {keys} metrics, {total:.2f} s in all, "
          f"{bare:.2f} s without the writers\n")
    print("| writer | time per epoch | start + end (once) | share of the run without writers |")
    print("|---|---|---|---|")
    for name, cb in writers:
        print(f"| {name} | {cb.epochs / epochs * 1e3:.2f} ms | {cb.once * 1e3:.1f} ms | "
              f"{100 * cb.seconds / bare:.2f}% |")
    times = {int(row["epoch"]): row["epoch_time_s"] for row in profiled.history if row["epoch"] > 0}
    others = statistics.median(v for k, v in times.items() if k != 2)
    print(f"\nprofiler, epoch 2 (first 20 batches): epoch_time_s {times[2]:.3f} s against a median of "
          f"{others:.3f} s for the other epochs (x{times[2] / others:.2f}); writing profiler/epoch_2/ "
          f"{profiler.seconds:.2f} s, once")


if __name__ == "__main__":
    main()
