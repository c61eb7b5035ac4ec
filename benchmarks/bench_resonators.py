"""Fused recurrent cells (BRF, ALIF, RF, BHRF) against the step-by-step autograd loop of the same
equations, and a real ECG BRF training epoch with the 400-epoch run projected.

    python benchmarks/bench_resonators.py [--threads 2] [--repeats 5] [--epochs 3] [--skip-epoch]

Part 1: a ``Recurrent`` layer (bias-free, Xavier) plus a leaky-integrator readout, forward and
backward (loss: the summed readout trace), float32, at the BRF paper's ECG shape (4-36-6, T 1300,
B 16) and SHD shape (700-128-20, T 250, B 32, inputs 5% dense, scaled so that the cells fire). Three versions of each cell:
``fused`` (compiled loop, hand-written backward: the default), ``steps`` (``fused: false``, one
autograd graph node per operation and step: how the reference code runs with plain backward),
``steps+fgi`` (the same with forward gradient injection, the reference code's faster option).
Goal: fused >= 2x faster than the step-by-step version.

Part 2: ``python main.py run configs/ecg_resonators --trial brf`` with ``--set epochs=N`` into
a temporary database and folder; the mean ``epoch_time_s`` of its metrics.csv (training, then
validation and test evaluation, as in the real run) times 400 is the projected full run. The
paper's full ECG BRF run took 8.5 h on a GPU with plain backward, 3.5 h with TorchScript and FGI.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, machine, median_time

from network.readouts import LeakyIntegrator
from settings.registries import LAYERS
from settings.schema import build, validate

SHAPES = {"ECG 4-36-6, T 1300, B 16": (4, 36, 6, 1300, 16, {"low": 3.0, "high": 5.0}),
          "SHD 700-128-20, T 250, B 32": (700, 128, 20, 250, 32, {"low": 5.0, "high": 10.0})}
CELLS = ("BRFKernel", "ALIFKernel", "RFKernel", "BHRFKernel")


def network(kernel: str, omega: dict, n_in: int, n_hidden: int, n_out: int, **options):
    torch.manual_seed(0)
    spec = {"type": kernel, **options}
    if kernel != "ALIFKernel":
        spec["omega"] = {"type": "Uniform", **omega}
    layer = build(validate({"type": "Recurrent", "out_features": n_hidden, "bias": False, "kernel": spec}, LAYERS,
                           "layer"), LAYERS, in_features=n_in)
    readout = LeakyIntegrator(n_hidden, n_out, tau=20.0, learn_tau=True, weight_init="XavierUniform")
    return layer, readout


def time_cell(kernel: str, shape: tuple, repeats: int) -> dict[str, float]:
    n_in, n_hidden, n_out, T, B, omega = shape
    scale = 20.0 if kernel == "ALIFKernel" else 300.0  # resonators integrate delta * I: they need more drive to fire
    x = (torch.rand(T, B, n_in, generator=torch.Generator().manual_seed(1)) < 0.05).float() * scale
    results = {}
    for name, options in (("fused", {}), ("steps", {"fused": False}), ("steps+fgi", {"fused": False, "fgi": True})):
        layer, readout = network(kernel, omega, n_in, n_hidden, n_out, **options)

        def step(layer=layer, readout=readout):
            trace = layer(x)
            readout(trace).trace.sum().backward()
            return trace

        results[name], _ = median_time(step, repeats if name == "fused" else max(2, repeats // 2), warmup=1)
        with torch.no_grad():
            results[f"rate_{name}"] = float(layer(x).out.mean())
    return results


def ecg_epoch(epochs: int) -> tuple[list[float], float]:
    """Per-epoch times of the real BRF trial, and the wall time of the whole command."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        command = [sys.executable, str(ROOT / "main.py"), "run", str(ROOT / "configs" / "ecg_resonators"),
                   "--trial", "brf", "--set", f"epochs={epochs}", "--set", "experiment.repeat=1",
                   "--set", f"experiment.base_dir={tmp}", "--db", f"sqlite:///{tmp}/db.sqlite",
                   "--no-mlflow", "--no-progress"]
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - started
        rows = list(csv.DictReader(open(next(Path(tmp).rglob("metrics.csv")))))
        return [float(r["epoch_time_s"]) for r in rows if r.get("epoch_time_s") and int(r["epoch"]) > 0], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the real ECG run in part 2")
    parser.add_argument("--skip-epoch", action="store_true", help="part 1 only")
    parser.add_argument("--cells", nargs="*", default=list(CELLS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(f"machine: {machine()}")
    print("| shape | cell | fused (s) | steps (s) | steps+fgi (s) | steps / fused | fgi / fused | spike rate |")
    print("|---|---|---|---|---|---|---|---|")
    for label, shape in SHAPES.items():
        for kernel in args.cells:
            r = time_cell(kernel, shape, args.repeats)
            assert r["rate_fused"] == r["rate_steps"], "fused and stepped cells disagree"
            print(f"| {label} | {kernel[:-6]} | {r['fused']:.3f} | {r['steps']:.3f} | {r['steps+fgi']:.3f} | "
                  f"{r['steps'] / r['fused']:.1f}x | {r['steps+fgi'] / r['fused']:.1f}x | {r['rate_fused']:.3f} |",
                  flush=True)
    if not args.skip_epoch:
        times, wall = ecg_epoch(args.epochs)
        mean = sum(times) / len(times)
        print(f"\nECG BRF (configs/ecg_resonators, trial brf): {len(times)} epochs timed, "
              f"{', '.join(f'{t:.2f}' for t in times)} s; mean {mean:.2f} s/epoch "
              f"-> 400 epochs projected {400 * mean / 60:.1f} min (command wall time {wall:.1f} s for "
              f"{args.epochs} epochs, start-up and compilation included)")


if __name__ == "__main__":
    main()
