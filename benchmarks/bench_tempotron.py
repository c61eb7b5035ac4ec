"""One tempotron training epoch at P = 1000, N = 500, T = 500: Spikelab vs the original framework's way.

    python benchmarks/bench_tempotron.py [--threads 1] [--repeats 7] [--batch-size 10]

Spikelab runs its real pipeline (configs/tempotron: LatencyEncoder events -> synaptic current by
an event scatter -> DENKernel as two exponential traces (rescaled cumulative sums, float64) ->
MaxMembrane -> SingleSpikeLR by a kernel-table lookup at t_max - t_i). The reference
(benchmarks/reference_tempotron.py) steps two leaky filters in time over a dense raster for every
pattern and loops over samples for the gradient, as the original framework did. Both start from
the same weights, data and batch order; the weights after one epoch must agree to 1e-5. Each
implementation runs in its own process so its peak memory (max RSS) is its own. One torch thread
by default, as experiment workers run (env.threads: 1); the per-batch work is too small to gain
from more.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import ROOT, machine, median_time

SEED = 1


def setup(batch_size: int):
    import pipeline  # noqa: F401
    from experiment.runner import build_pipeline
    from settings.resolve import resolve_experiment
    from tools.seeding import torch_generator

    trial = resolve_experiment(ROOT / "configs" / "tempotron", [f"batch_size={batch_size}"]).trials[0]
    pipe = build_pipeline(trial.config)
    splits, encoded, model = pipe.prepare(SEED)
    order = torch.randperm(len(splits.train), generator=torch_generator(SEED, "shuffle"))
    return pipe, splits, encoded, model, order, trial.config


def run_spikelab(batch_size: int, repeats: int, out: Path) -> dict:
    from pipeline.state import FitState
    from tools.seeding import torch_generator

    pipe, splits, encoded, model, _, _ = setup(batch_size)
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def epoch():
        model.load_state_dict(initial)
        optimizer = pipe.optimizer_factory(params=model.parameters())
        state = FitState(pipe, model, optimizer, None, SEED, None, 1, splits.sizes(), epoch=1)
        state.extra["shuffle"] = torch_generator(SEED, "shuffle")
        pipe.train_epoch(state, encoded["train"], [])

    seconds, samples = median_time(epoch, repeats, warmup=1)
    torch.save(model.layers[0].weight.detach().clone(), out)
    return {"seconds": seconds, "samples": samples}


def run_reference(batch_size: int, repeats: int, out: Path) -> dict:
    from reference_tempotron import reference_epoch

    _, _, encoded, model, order, config = setup(batch_size)
    times = encoded["train"].inputs.times
    w0 = model.layers[0].weight.detach().clone()
    opt = config["optimizer"]
    kernel = config["model"]["layers"][0]["kernel"]
    result = {}

    def epoch():
        result["w"] = reference_epoch(times, encoded["train"].targets, w0, order, encoded["train"].inputs.T,
                                      batch_size, opt["lr"], opt["momentum"], kernel["tau_m"], kernel["tau_s"],
                                      config["loss"]["v_th"])

    seconds, samples = median_time(epoch, repeats, warmup=0)
    torch.save(result["w"], out)
    return {"seconds": seconds, "samples": samples}


def child(args: argparse.Namespace) -> None:
    import resource

    import pipeline  # noqa: F401  (the imports both implementations share, before the baseline)

    torch.set_num_threads(args.threads)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runner = run_spikelab if args.impl == "spikelab" else run_reference
    result = runner(args.batch_size, args.repeats, Path(args.out))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["baseline_rss_mb"] = baseline
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--reference-repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--impl", choices=["spikelab", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.impl:
        child(args)
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for impl, repeats in (("spikelab", args.repeats), ("reference", args.reference_repeats)):
            out = Path(tmp) / f"{impl}.pt"
            cmd = [sys.executable, __file__, "--impl", impl, "--out", str(out), "--threads", str(args.threads),
                   "--repeats", str(repeats), "--batch-size", str(args.batch_size)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
            results[impl]["weights"] = torch.load(out)
    diff = float((results["spikelab"]["weights"] - results["reference"]["weights"]).abs().max())
    s, r = results["spikelab"], results["reference"]
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; P = 1000, N = 500, T = 500, batch {args.batch_size}\n")
    print("| implementation | epoch time (median) | peak RSS | peak RSS above the import baseline |")
    print("|---|---|---|---|")
    for name, res in (("Spikelab (event scatter + exponential traces + kernel lookup)", s),
                      ("reference (stepped filters + per-sample loop)", r)):
        print(f"| {name} | {res['seconds'] * 1e3:.1f} ms | {res['peak_rss_mb']:.0f} MB "
              f"| {res['peak_rss_mb'] - res['baseline_rss_mb']:.0f} MB |")
    print(f"\nspeed-up: {r['seconds'] / s['seconds']:.0f}x; max |w_spikelab - w_reference| after one epoch: {diff:.2e}")
    if diff > 1e-5:
        raise SystemExit(f"weights differ by {diff:.2e} > 1e-5")


if __name__ == "__main__":
    main()
