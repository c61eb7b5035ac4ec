"""Rasters and membrane traces of a trained LIF run: re-run from its checkpoint when it has no
spike recording, read from the recording when it has one."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from testkit import TINY_CONFIG, write_experiment

from analysis.run_activity import plot_run_activity, rerun_activity, run_activity
from tools.recordings import recording_path, save_recording


@pytest.fixture(scope="module")
def lif_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from experiment.runner import execute_run
    from settings.resolve import resolve_experiment

    tmp = tmp_path_factory.mktemp("lif")
    folder = write_experiment(tmp / "experiment", TINY_CONFIG, env="T: 12\n")
    trial = resolve_experiment(folder, []).trials[0]
    execute_run(trial.config, 3, tmp / "run", {"seed": 3}, progress=False)
    return tmp / "run"


def test_rerun_gives_the_hidden_spikes_and_membranes(lif_run: Path) -> None:
    recording = rerun_activity(lif_run, split="test")
    assert recording.split == "test" and recording.epoch in (1, 2)
    assert recording.label.tolist() == [0, 1, 2, 3]  # the first sample of each class, four at most
    hidden = recording.layers["layers.0"]
    assert hidden.spiking and hidden.out.shape == hidden.membrane.shape == (12, 4, 16)
    assert set(np.unique(hidden.out)) <= {0.0, 1.0}
    assert recording.scores.shape == (4, 10)
    assert recording.prediction.tolist() == recording.scores.argmax(axis=1).tolist()
    assert recording.input is not None and recording.input.shape[:2] == (12, 4)
    again = rerun_activity(lif_run, split="test")
    assert np.array_equal(again.layers["layers.0"].membrane, hidden.membrane)


def test_plots_come_from_the_recording_when_there_is_one(lif_run: Path, tmp_path: Path) -> None:
    paths, source = plot_run_activity(lif_run, tmp_path / "rerun")
    assert [p.name for p in paths] == ["activity_raster.png", "activity_traces.png"]
    assert "re-run" in source and "no spike recording" in source
    recording = replace(rerun_activity(lif_run), epoch=7)
    save_recording(recording, recording_path(lif_run, 7))
    try:
        found, source = run_activity(lif_run)
        assert found.epoch == 7 and source == "the run's spike recording (recordings/epoch_7.npz)"
    finally:
        recording_path(lif_run, 7).unlink()


TEMPOTRON = """\
data: {type: RandomDataset, size: 12, input_size: 20}
encoder: LatencyEncoder
model:
  layers:
    - {type: Dense, out_features: 1, kernel: DENKernel, weight_init: {type: Normal, mean: 0.02, std: 0.05}}
  readout: MaxMembrane
loss: BinaryLoss
learning_rule: SingleSpikeLR
optimizer: {type: MomentumOptimizer, lr: 0.01, momentum: 0.9}
epochs: 1
batch_size: 6
"""


def test_a_tempotron_run_gets_its_latency_input_as_a_raster(tmp_path: Path) -> None:
    from experiment.runner import execute_run
    from settings.resolve import resolve_experiment

    folder = write_experiment(tmp_path / "experiment", TEMPOTRON, env="T: 40\n")
    trial = resolve_experiment(folder, []).trials[0]
    execute_run(trial.config, 3, tmp_path / "run", {"seed": 3}, progress=False)
    recording = rerun_activity(tmp_path / "run")
    assert recording.split == "train"  # RandomDataset has no test split
    assert recording.input.shape == (40, 2, 20)  # one pattern of each class, T = 40 steps, 20 afferents
    # each afferent fires exactly once in a latency-coded pattern, unless it stays silent
    assert (recording.input.sum(axis=0) <= 1).all() and recording.input.sum() > 0
    assert recording.layers["layers.0"].membrane.shape == (40, 2, 1)
    paths, _ = plot_run_activity(tmp_path / "run", tmp_path / "plots")
    assert [p.name for p in paths] == ["activity_raster.png", "activity_traces.png"]
