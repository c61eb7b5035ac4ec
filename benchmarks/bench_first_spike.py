"""First-spike-time layers: FirstSpikeLIF (one closed form per neuron, analytic backward) against a
plain-autograd implementation of the same closed form, and the Fast&Deep Yin-Yang run end to end.

    python benchmarks/bench_first_spike.py [--threads 2] [--repeats 7] [--epochs 300] [--skip-run]

Part 1: forward + backward of one layer (loss: the sum of the finite spike times), float32, at the
shapes of the reference setups: Fast&Deep Yin-Yang hidden (B 150, 5 -> 120) and output
(121 -> 3), DelGrad (4 -> 30, tau_m = 2 tau_s) and the MNIST hidden layer (B 80, 784 -> 350).
``autograd`` is benchmarks/reference_first_spike.py: every causal prefix's candidate time, the
accepted one selected, torch autograd through the prefix sums and the Lambert W iterations.

Part 2: ``python main.py run configs/yinyang_fastdeep`` (one repeat, ``--set epochs=N``) in a
temporary database and folder, timed from the command's start to its exit: training, evaluation
of validation and test every epoch, checkpoints, the database and the run plots, as a user runs
it. The original implementation: about 30 minutes for 300 epochs on a laptop CPU (its paper).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import torch
from common import ROOT, machine, median_time
from reference_first_spike import autograd_spike_times

from network.first_spike.spike_times import spike_times

SHAPES = {"Fast&Deep hidden B150 5->120": (150, 5, 120, 1.0, 1.5),
          "Fast&Deep output B150 121->3": (150, 121, 3, 1.0, 0.1),
          "DelGrad hidden B150 4->30 (tau_m=2)": (150, 4, 30, 2.0, 1.5),
          "MNIST hidden B80 784->350": (80, 784, 350, 1.0, 0.05)}


def time_layer(B: int, I: int, O: int, ratio: float, mean: float, repeats: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    t = (0.15 + torch.rand(B, I, generator=g) * 1.85).requires_grad_()
    w = (torch.randn(O, I, generator=g) * 0.8 + mean).requires_grad_()
    c = torch.tensor([[1.0 / ratio]])

    def ours() -> None:
        T = spike_times(t, w, c, ratio)
        torch.where(torch.isfinite(T), T, torch.zeros_like(T)).sum().backward()

    def plain() -> None:
        T = autograd_spike_times(t, w, 1.0, ratio)
        torch.where(torch.isfinite(T), T, torch.zeros_like(T)).sum().backward()

    with torch.no_grad():
        fired = torch.isfinite(spike_times(t, w, c, ratio)).float().mean().item()
    out = {"FirstSpikeLIF": median_time(ours, repeats)[0], "autograd": median_time(plain, repeats)[0],
           "fired": fired}
    return out


def time_run(epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "main.py", "run", "configs/yinyang_fastdeep", "--db", f"sqlite:///{tmp}/bench.db",
               "--set", f"epochs={epochs}", "--set", "experiment.repeat=1", "--set", f"experiment.base_dir={tmp}",
               "--no-mlflow", "--no-progress"]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--skip-run", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {machine()}")
    print("| layer (forward + backward) | FirstSpikeLIF (ms) | plain autograd (ms) | speed-up | neurons firing |")
    print("|---|---|---|---|---|")
    for name, shape in SHAPES.items():
        r = time_layer(*shape, repeats=args.repeats)
        print(f"| {name} | {r['FirstSpikeLIF'] * 1e3:.2f} | {r['autograd'] * 1e3:.2f} | "
              f"{r['autograd'] / r['FirstSpikeLIF']:.1f}x | {r['fired']:.0%} |")
    if not args.skip_run:
        seconds = time_run(args.epochs)
        print(f"\nFast&Deep Yin-Yang, {args.epochs} epochs, `python main.py run configs/yinyang_fastdeep` "
              f"(1 repeat): {seconds:.0f} s wall ({seconds / 60:.1f} min; the original: about 30 min on a laptop CPU)")


if __name__ == "__main__":
    main()
