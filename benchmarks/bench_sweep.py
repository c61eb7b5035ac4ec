"""Parallel sweeps and the platform's per-run overhead.

    python benchmarks/bench_sweep.py [--runs 8] [--epochs 40] [--trivial 40] [--skip-sweep]

(a) A sweep of ``--runs`` CPU-bound runs (Digits, rate code T = 100, LIF 256, ``--epochs`` epochs,
    about 0.9 s each; one torch thread per run) through ``python main.py run`` with ``--n-jobs 1``
    and ``--n-jobs 2``: wall time of the whole command (timed once each), each into a fresh
    database. Goal: n-jobs 2 >= 1.7x faster.
(b) The platform's overhead per run on trivial runs (40 random patterns, one tiny layer, 1 epoch):
    the time ``execute_task`` takes (claim, heartbeat thread, run folder, config/run.json,
    CSV and checkpoint files, one metrics batch per epoch, artifacts with sha256, finish) minus the
    time of building the pipeline and ``TrainingPipeline.fit`` alone on the same config (what any
    runner must do), in ms per run (medians), without and with the run's plots/ (``run_plots``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine

CPU_BOUND = """\
data: {type: Digits, val_fraction: 0.15, test_fraction: 0.2}
encoder: {type: RateEncoder, gain: 1.0}
model:
  layers:
    - {type: Dense, out_features: 256, kernel: {type: LIFKernel, tau_m: 10.0}}
  readout: {type: LeakyIntegrator, out_features: 10, tau: 10.0, reduce: max}
loss: CrossEntropyLoss
optimizer: {type: Adam, lr: 0.01}
epochs: EPOCHS
batch_size: 32
"""

TRIVIAL = """\
data: {type: RandomDataset, size: 40, input_size: 20}
encoder: {type: LatencyEncoder, T: 20}
model:
  layers:
    - {type: Dense, out_features: 1, kernel: DENKernel}
  readout: MaxMembrane
loss: BinaryLoss
learning_rule: SingleSpikeLR
optimizer: {type: MomentumOptimizer, lr: 0.01, momentum: 0.9}
epochs: 1
batch_size: 20
"""


def write(folder: Path, config: str, trials: str, base: Path, plots: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config)
    (folder / "trials.yaml").write_text(trials)
    (folder / "env.yaml").write_text("T: 100\nthreads: 1\n")
    (folder / "experiment.yaml").write_text(f"name: bench\nbase_dir: {base}\nmlflow: {{enabled: false}}\n"
                                            f"run_plots: {str(plots).lower()}\n")
    return folder


def sweep_wall(n_runs: int, n_jobs: int, epochs: int) -> float:
    lrs = ", ".join(f"{0.004 + 0.001 * i:.3f}" for i in range(n_runs))
    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp) / "exp", CPU_BOUND.replace("EPOCHS", str(epochs)),
                       f"- name: grid\n  sweep:\n    optimizer.lr: [{lrs}]\n",
                       Path(tmp) / "out")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "main.py"), "run", str(folder), "--n-jobs", str(n_jobs),
                        "--no-progress"], check=True, capture_output=True, cwd=tmp,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        return time.perf_counter() - t0


def per_run_overhead(n_runs: int, plots: bool) -> tuple[float, float]:
    import pipeline  # noqa: F401
    from experiment.runner import build_pipeline
    from experiment.session import ExperimentSession
    from experiment.worker import execute_task
    from settings.resolve import resolve_experiment

    with tempfile.TemporaryDirectory() as tmp:
        folder = write(Path(tmp) / "exp", TRIVIAL, f"- name: t\n  repeat: {n_runs}\n", Path(tmp) / "out", plots)
        resolved = resolve_experiment(folder)
        session = ExperimentSession(resolved, progress=False, mlflow=False)
        session.open()
        tasks = session.tasks(session.todo(session.record(resolved.trials)))
        session.store.close()
        full = []
        for task in tasks:
            t0 = time.perf_counter()
            assert execute_task(task).status == "COMPLETED"
            full.append(time.perf_counter() - t0)
        fit = []
        for task in tasks:  # what any runner must do: build the pipeline from the config and fit
            t0 = time.perf_counter()
            build_pipeline(task.config).fit(task.seed)
            fit.append(time.perf_counter() - t0)
    return statistics.median(full) * 1e3, statistics.median(fit) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40, help="epochs per CPU-bound run")
    parser.add_argument("--trivial", type=int, default=40)
    parser.add_argument("--skip-sweep", action="store_true", help="measure only the per-run overhead")
    args = parser.parse_args()
    print(f"machine: {machine()}, {os.cpu_count()} cores\n")
    if not args.skip_sweep:
        one, two = sweep_wall(args.runs, 1, args.epochs), sweep_wall(args.runs, 2, args.epochs)
        print(f"| sweep of {args.runs} CPU-bound runs ({args.epochs} epochs each; one timed command each) | wall |")
        print("|---|---|")
        print(f"| --n-jobs 1 | {one:.1f} s |")
        print(f"| --n-jobs 2 | {two:.1f} s ({one / two:.2f}x faster) |\n")
    print(f"| trivial run (median of {args.trivial}) | run_plots: false | run_plots: true |")
    print("|---|---|---|")
    (full, fit), (full_p, fit_p) = per_run_overhead(args.trivial, False), per_run_overhead(args.trivial, True)
    print(f"| execute_task (claim ... finish) | {full:.1f} ms | {full_p:.1f} ms |")
    print(f"| build_pipeline + TrainingPipeline.fit alone | {fit:.1f} ms | {fit_p:.1f} ms |")
    print(f"| platform overhead per run | {full - fit:.1f} ms | {full_p - fit_p:.1f} ms |")


if __name__ == "__main__":
    main()
