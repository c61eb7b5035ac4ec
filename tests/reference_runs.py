"""Per-epoch metrics of bundled configs, recorded before the model contract changed (issue 9) and
compared by ``tests/pipeline/test_reference_metrics.py``: a change of the contract must not change what the
tempotron and LIF families compute. One torch thread; a few epochs each.

Each case runs in a child process with the CPU's vector kernels pinned (``ATEN_CPU_CAPABILITY=default``,
``MKL_CBWR=COMPATIBLE``): float32 training over a few epochs amplifies the last-bit differences between
instruction sets (AVX2 / AVX-512) into a few spikes, so without the pin the reference would hold on the
machine that recorded it only.

Regenerate only when a change of results is intended: ``python tests/reference_runs.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE = Path(__file__).with_name("reference_metrics.json")
SEED = 12345
#: config folder -> --set overrides that keep the run short
CASES = {
    "tempotron": ["epochs=3", "data.size=200", "data.input_size=200", "env.T=200"],
    "digits_lif": ["epochs=2", "model.layers[0].out_features=32"],
    "digits_tempotron": ["epochs=2"],
}
PINNED = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1"}


def run_case(name: str) -> list[dict[str, float]]:
    """The history of the first trial of ``configs/<name>`` with the case's overrides, seed SEED,
    computed in a child process with pinned CPU kernels."""
    done = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True,
                          env={**os.environ, **PINNED}, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"reference case {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _history(name: str) -> list[dict[str, float]]:
    import torch

    import pipeline  # noqa: F401  (registers every component)
    from experiment.runner import build_pipeline
    from settings.resolve import resolve_experiment

    torch.set_num_threads(1)
    trial = resolve_experiment(ROOT / "configs" / name, CASES[name]).trials[0]
    history = build_pipeline(trial.config).fit(SEED).history
    return [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in history]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:2] == ["--case"]:
        print(json.dumps(_history(sys.argv[2])))
    else:
        FILE.write_text(json.dumps({name: run_case(name) for name in CASES}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {FILE}")
