"""Plots of a trained tempotron run folder: the PNG files are written and show the right things."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from testkit import write_experiment

from analysis.tempotron_plots import (load_trained_run, plot_input_raster, plot_kernel_response, plot_membrane,
                                      plot_tempotron_run)
from network.kernels.den import DENKernel
from network.kernels.stepped import LeakyKernel, SequentialDENKernel

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

BINARY = """\
data: {type: RandomDataset, size: 24, input_size: 40}
encoder: LatencyEncoder
model:
  layers:
    - {type: Dense, out_features: 1, kernel: DENKernel, weight_init: {type: Normal, mean: 0.02, std: 0.05}}
  readout: MaxMembrane
loss: BinaryLoss
learning_rule: SingleSpikeLR
optimizer: {type: MomentumOptimizer, lr: 0.01, momentum: 0.9}
epochs: 2
batch_size: 8
"""

MULTI = """\
data: {type: Digits, val_fraction: 0.1, test_fraction: 0.1}
encoder: {type: LatencyEncoder, direction: early, silent_below: 0.0}
model:
  layers:
    - {type: Dense, out_features: 10, kernel: SequentialDENKernel}
  readout: MaxMembrane
loss: BinaryLoss
learning_rule: [SingleSpikeLR, PlasticityInduction]
optimizer: {type: MomentumOptimizer, lr: 0.01, momentum: 0.9}
epochs: 1
batch_size: 64
"""


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 2000
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def trained(tmp: Path, config: str, T: int) -> Path:
    from experiment.runner import execute_run
    from settings.resolve import resolve_experiment

    folder = write_experiment(tmp / "experiment", config, env=f"T: {T}\n")
    trial = resolve_experiment(folder, []).trials[0]
    execute_run(trial.config, 3, tmp / "run", {"seed": 3}, progress=False)
    return tmp / "run"


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory.mktemp("binary"), BINARY, 80)


def test_plot_tempotron_run_writes_three_pngs_into_the_run_folder(binary_run: Path):
    paths = plot_tempotron_run(binary_run)
    assert [p.name for p in paths] == ["input_raster.png", "membrane.png", "kernel_response.png"]
    for path in paths:
        assert path.parent == binary_run / "plots"
        assert_png(path)


def test_the_rebuilt_run_has_the_checkpoint_weights(binary_run: Path):
    run = load_trained_run(binary_run, "last")
    saved = torch.load(binary_run / "checkpoints" / "last.pt", weights_only=False)
    assert torch.equal(run.model.layers[0].weight, saved["model"]["layers.0.weight"])
    assert run.epoch == 2 and run.v_th == 1.0
    assert len(run.encoded["train"]) == 24


def test_single_plots_go_where_they_are_told(binary_run: Path, tmp_path: Path):
    run = load_trained_run(binary_run)
    assert_png(plot_input_raster(run, tmp_path / "raster.png", per_class=2))
    assert_png(plot_membrane(run, tmp_path / "v.png", per_class=1))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_trained_run(binary_run, "missing")
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        load_trained_run(tmp_path)


def test_one_tempotron_per_class(tmp_path: Path):
    run_dir = trained(tmp_path, MULTI, 30)
    paths = plot_tempotron_run(run_dir, out_dir=tmp_path / "figures", per_class=2)
    names = ["input_raster.png", "membrane.png", "kernel_response.png"]
    assert paths == [tmp_path / "figures" / name for name in names]
    for path in paths:
        assert_png(path)


@pytest.mark.parametrize("kernel", [DENKernel(1), SequentialDENKernel(1, tau_m=2.5, tau_s=10.0), LeakyKernel(1)])
def test_kernel_response_plot(kernel, tmp_path: Path):
    assert_png(plot_kernel_response(kernel, 60, tmp_path / "k.png"))


def test_dense_input_rasters(tmp_path: Path):
    dense = BINARY.replace("encoder: LatencyEncoder", "encoder: {type: LatencyEncoder, output: dense}")
    run = load_trained_run(trained(tmp_path, dense, 60))
    assert not hasattr(run.encoded["train"].inputs, "times")
    assert_png(plot_input_raster(run, tmp_path / "raster.png"))
    assert_png(plot_membrane(run, tmp_path / "v.png"))
