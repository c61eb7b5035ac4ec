"""Combinations that cannot work are config errors before anything is written (issue 9, item 7):
one line each from ``main.py config`` and ``main.py run``, exit 2, no database, no run folder."""
from __future__ import annotations

from pathlib import Path

import pytest
from testkit import TEMPOTRON_CONFIG, TINY_CONFIG, write_experiment

import main

SDIGITS = """\
data: {type: SequentialDigits}
model:
  layers:
    - {type: Recurrent, out_features: 8, kernel: LIFKernel}
  readout: {type: LeakyIntegrator, out_features: 10}
loss: {type: SequenceNLL, mode: last}
optimizer: {type: Adam, lr: 0.01}
epochs: 1
"""
ECG = """\
data: {type: ECGQTDB}
model:
  layers:
    - {type: Recurrent, out_features: 8, kernel: LIFKernel}
  readout: {type: LeakyIntegrator, out_features: 6}
loss: {type: SequenceNLL, mode: per_step}
optimizer: {type: Adam, lr: 0.01}
epochs: 1
"""

CASES = {
    "rule vs readout": (TEMPOTRON_CONFIG.replace("readout: MaxMembrane", "readout: {type: LeakyIntegrator, out_features: 1}"),
                        "model.readout.type SingleSpikeLR needs a MaxMembrane readout, got 'LeakyIntegrator'"),
    "rule vs kernel": (TEMPOTRON_CONFIG.replace("kernel: DENKernel", "kernel: LIFKernel"),
                       "model.layers[0].kernel.type SingleSpikeLR needs a reset-free kernel with an impulse response"),
    "rule vs layer": (TEMPOTRON_CONFIG.replace("type: Dense", "type: Recurrent"),
                      "model.layers[0].type SingleSpikeLR needs a Dense layer"),
    "per-step loss vs per-sample data": (SDIGITS.replace("mode: last", "mode: per_step"),
                                         "loss SequenceNLL (mode per_step) trains on a label per step, but "
                                         "SequentialDigits gives one label per sample; use a per-sample loss"),
    "per-sample loss vs per-step data": (ECG.replace("loss: {type: SequenceNLL, mode: per_step}", "loss: CrossEntropyLoss"),
                                         "loss CrossEntropyLoss trains on one label per sample, but ECGQTDB gives a "
                                         "label per step; use SequenceNLL with mode: per_step"),
    "loss vs readout without a trace": (SDIGITS.replace("readout: {type: LeakyIntegrator, out_features: 10}",
                                                        "readout: SpikeCount").replace("out_features: 8", "out_features: 10"),
                                        "loss SequenceNLL (mode last) reads the readout's scores at every step, but "
                                        "SpikeCount keeps none"),
    "only regularisers": (TINY_CONFIG.replace("loss: CrossEntropyLoss", "loss: [SpikeCountLoss]"),
                          "loss lists only regularisers (SpikeCountLoss)"),
    "encoder on sequence data": (SDIGITS + "encoder: RateEncoder\n",
                                 "encoder must be null: SequentialDigits already gives a sequence"),
}


@pytest.mark.parametrize("command", ["config", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_incompatible_components_are_one_line_and_nothing_is_written(tmp_path: Path, capsys, case: str,
                                                                      command: str) -> None:
    config, expected = CASES[case]
    out = tmp_path / "out"
    folder = write_experiment(tmp_path / "exp", config, experiment=f"name: bad\nbase_dir: {out}\nmlflow: {{enabled: false}}\n")
    assert main.main([command, str(folder)] + (["--no-progress"] if command == "run" else [])) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not out.exists()


def test_compatible_sequence_configs_pass(tmp_path: Path, capsys) -> None:
    for name, config in (("sdigits", SDIGITS), ("ecg", ECG)):
        folder = write_experiment(tmp_path / name, config)
        assert main.main(["config", str(folder)]) == 0, capsys.readouterr().err
