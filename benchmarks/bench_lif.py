"""Linear -> LIF forward+backward against a bare Linear of the same shapes (float32).

    python benchmarks/bench_lif.py [--threads 2] [--repeats 7]

Shapes: (T 500, B 32, 512 -> 512) and (T 100, B 64, 700 -> 256). Goal: Linear+LIF within 1.3x
of the bare Linear. Also shown: the same LIF run step by step through autograd (the reference
the fused kernel is tested against), to show what fusing buys.
"""
from __future__ import annotations

import argparse

import torch
from common import machine, median_time

from network.kernels.lif import LIFKernel

SHAPES = [(500, 32, 512, 512), (100, 64, 700, 256)]


def bench(T: int, B: int, n_in: int, n_out: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    x = (torch.rand(T, B, n_in) < 0.1).float().requires_grad_()
    linear = torch.nn.Linear(n_in, n_out, bias=False)
    torch.nn.init.normal_(linear.weight, 0.05, 1.0 / n_in ** 0.5)
    fused = LIFKernel(size=n_out, tau_m=10.0)
    stepwise = LIFKernel(size=n_out, tau_m=10.0, fused=False)

    def linear_only():
        linear(x).sum().backward()

    def with_lif(kernel):
        def go():
            out, _ = kernel(linear(x))
            out.sum().backward()
        return go

    t_lin, _ = median_time(linear_only, repeats)
    t_fused, _ = median_time(with_lif(fused), repeats)
    t_step, _ = median_time(with_lif(stepwise), max(3, repeats // 2), warmup=1)
    with torch.no_grad():
        rate = float(fused(linear(x))[0].mean())
    return {"linear": t_lin, "fused": t_fused, "stepwise": t_step, "rate": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}\n")
    print("| shape (T, B, in -> out) | Linear fwd+bwd | Linear+LIF fused | ratio | Linear+LIF step-by-step autograd | "
          "spike rate |")
    print("|---|---|---|---|---|---|")
    for T, B, n_in, n_out in SHAPES:
        r = bench(T, B, n_in, n_out, args.repeats)
        print(f"| ({T}, {B}, {n_in} -> {n_out}) | {r['linear'] * 1e3:.1f} ms | {r['fused'] * 1e3:.1f} ms | "
              f"{r['fused'] / r['linear']:.2f}x | {r['stepwise'] * 1e3:.1f} ms ({r['stepwise'] / r['linear']:.1f}x) | "
              f"{r['rate']:.3f} |")


if __name__ == "__main__":
    main()
