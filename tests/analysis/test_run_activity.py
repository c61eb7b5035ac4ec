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
