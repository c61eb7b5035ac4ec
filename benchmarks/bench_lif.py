"""Linear -> LIF forward+backward against a bare Linear of the same shapes (float32).

    python benchmarks/bench_lif.py [--threads 2] [--repeats 7]

Shapes: (T 500, B 32, 512 -> 512) and (T 100, B 64, 700 -> 256). Goal: Linear+LIF within 1.3x
of the bare Linear. Also shown: the same LIF run step by step through autograd (the reference
the fused kernel is tested against), to show what fusing buys, and the peer libraries when they
are installed (benchmarks/requirements.txt): snnTorch ``Leaky`` (the same current-based LIF,
stepped in a Python loop as its docs do), Norse ``LIF`` (CUBA, its own loop) and SpikingJelly
``LIFNode`` (multi-step mode, its torch backend: the CuPy/Triton backends need a GPU), against
Spikelab's LIF and CUBA LIF.
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
    t_cuba, _ = median_time(with_lif(LIFKernel(size=n_out, tau_m=10.0, tau_syn=5.0)), repeats)
    with torch.no_grad():
        rate = float(fused(linear(x))[0].mean())
    result = {"linear": t_lin, "fused": t_fused, "stepwise": t_step, "cuba": t_cuba, "rate": rate}
    peers = peer_models(n_out)
    for name, step_all in peers.items():
        def go(step_all=step_all):
            step_all(linear(x)).sum().backward()
        result[name], _ = median_time(go, max(3, repeats // 2), warmup=1)
    return result


def peer_models(n_out: int) -> dict:
    """Forward functions ``current [T, B, N] -> spikes [T, B, N]`` of the installed peer libraries."""
    peers = {}
    try:
        import snntorch

        leaky = snntorch.Leaky(beta=float(torch.exp(torch.tensor(-0.1))), threshold=1.0, reset_mechanism="subtract")

        def snntorch_run(current):
            mem = leaky.init_leaky()
            spikes = []
            for step in current:
                spike, mem = leaky(step, mem)
                spikes.append(spike)
            return torch.stack(spikes)

        peers["snnTorch Leaky"] = snntorch_run
    except ImportError:
        pass
    try:
        import norse.torch as norse

        lif = norse.LIF(norse.LIFParameters(tau_mem_inv=torch.tensor(100.0), tau_syn_inv=torch.tensor(200.0)))
        peers["Norse LIF (CUBA)"] = lambda current: lif(current)[0]
    except ImportError:
        pass
    try:
        from spikingjelly.activation_based import neuron, surrogate

        # tau = 10 with decay_input: u <- u + (x - u) / tau, soft reset (v_reset None), multi-step mode
        node = neuron.LIFNode(tau=10.0, v_reset=None, surrogate_function=surrogate.Sigmoid(), step_mode="m")

        def spikingjelly_run(current):
            node.reset()
            return node(current)

        peers["SpikingJelly LIFNode"] = spikingjelly_run
    except ImportError:
        pass
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}\n")
    rows = [(shape, bench(*shape, args.repeats)) for shape in SHAPES]
    peers = [k for k in rows[0][1] if k not in ("linear", "fused", "stepwise", "cuba", "rate")]
    print("| shape (T, B, in -> out) | Linear fwd+bwd | Linear+LIF fused (ratio) | Linear+CUBA LIF fused | "
          "Linear+LIF step-by-step autograd | " + " | ".join(f"Linear+{p}" for p in peers) + " | spike rate |")
    print("|---" * (6 + len(peers)) + "|")
    for (T, B, n_in, n_out), r in rows:
        cells = [f"({T}, {B}, {n_in} -> {n_out})", f"{r['linear'] * 1e3:.0f} ms",
                 f"{r['fused'] * 1e3:.0f} ms ({r['fused'] / r['linear']:.2f}x)", f"{r['cuba'] * 1e3:.0f} ms",
                 f"{r['stepwise'] * 1e3:.0f} ms ({r['stepwise'] / r['linear']:.2f}x)"]
        cells += [f"{r[p] * 1e3:.0f} ms ({r[p] / r['linear']:.2f}x)" for p in peers]
        print("| " + " | ".join(cells) + f" | {r['rate']:.3f} |")


if __name__ == "__main__":
    main()
