"""The first-spike figures (pipeline/callbacks/first_spike_plots.py) on hand-made first-spike
models with known answers: a model that only looks at x splits the Yin-Yang square at x = 0.5,
recorded times and hidden layers are what the model gave, the confusion counts are exact."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from data.yinyang import YinYang
from encoders.linear_time import LinearTimeEncoder
from network.events import ContinuousSpikes
from network.layers import LayerTrace
from network.losses import CrossEntropyLoss
from network.network import NetworkOutput
from network.readouts import ReadoutOutput
from network.rules import BPTT
from pipeline.callbacks import first_spike_plots as fsp
from pipeline.training import TrainingPipeline

INF = math.inf
#: LinearTimeEncoder's defaults: x = 0.5 spikes at 0.15 + 0.5 * 1.85
T_HALF = 0.15 + 0.5 * 1.85


class XOnly(nn.Module):
    """A first-spike model that looks at x alone: a "hidden layer" passes the input times on;
    output neuron 0 spikes at the time of x, neuron 1 at the time x = 0.5 would have, neuron 2
    never. The earliest spike wins: class 0 for x < 0.5, class 1 for x > 0.5."""

    out_features = 3

    def __init__(self, input_size: int = 4):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        self.delay = nn.Parameter(torch.tensor([0.5]))

    def forward(self, x: ContinuousSpikes) -> NetworkOutput:
        t = x.times
        out = torch.stack([t[:, 0], torch.full_like(t[:, 0], T_HALF), torch.full_like(t[:, 0], INF)], dim=1)
        traces = [LayerTrace(x, ContinuousSpikes(t), None, None, True),
                  LayerTrace(ContinuousSpikes(t), ContinuousSpikes(out), None, None, True)]
        return NetworkOutput(-out, traces, ReadoutOutput(-out, None, None, out))


def pipeline(train: int = 30, test: int = 40) -> TrainingPipeline:
    return TrainingPipeline(data=YinYang(train_size=train, val_size=0, test_size=test), model=XOnly,
                            loss=CrossEntropyLoss(), optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
                            encoder=LinearTimeEncoder(), learning_rule=BPTT(), eval_batch_size=7, dtype="float64")


def test_grid_points_are_the_cell_centres_row_by_row_from_y_0():
    points = fsp.grid_points(4)
    assert points.shape == (16, 2)
    assert points[:4].tolist() == [[0.125, 0.125], [0.375, 0.125], [0.625, 0.125], [0.875, 0.125]]
    assert points[4].tolist() == [0.125, 0.375] and points[-1].tolist() == [0.875, 0.875]


def test_decision_map_of_a_model_that_only_looks_at_x_is_split_at_x_half():
    pipe = pipeline()
    grid = fsp.decision_grid(pipe, XOnly(), resolution=10)
    centres = (np.arange(10) + 0.5) / 10
    expected = np.where(centres < 0.5, 0, 1)
    assert grid.shape == (10, 10)
    assert all(row.tolist() == expected.tolist() for row in grid)  # every row (every y) the same split


def test_record_split_gathers_times_hidden_layers_and_predictions_across_batches():
    pipe = pipeline()
    splits, encoded, model = pipe.prepare(seed=0)
    record = fsp.record_split(pipe, model, encoded["test"])
    x = splits.test.x[:, 0].numpy()
    assert record.output_times.shape == (40, 3) and record.targets.tolist() == splits.test.y.tolist()
    assert np.allclose(record.output_times[:, 0], 0.15 + 1.85 * x, rtol=0, atol=1e-14)
    assert np.all(record.output_times[:, 1] == T_HALF) and np.all(np.isinf(record.output_times[:, 2]))
    assert record.predicted.tolist() == np.where(x < 0.5, 0, 1).tolist()
    assert list(record.hidden) == ["layers.0"]  # the last spiking layer is the output, not hidden
    assert np.allclose(record.hidden["layers.0"], encoded["test"].inputs.times.numpy(), rtol=0, atol=0)
    assert model.training  # left in the mode it was in


def test_a_model_without_output_times_draws_nothing(tmp_path: Path):
    class Rates(XOnly):
        def forward(self, x):
            out = super().forward(x)
            return out._replace(readout=out.readout._replace(times=None))

    pipe = pipeline()
    _, encoded, _ = pipe.prepare(seed=0)
    assert fsp.record_split(pipe, Rates(), encoded["test"]) is None
    assert fsp.draw_first_spike_plots(pipe, Rates(), encoded, 3, tmp_path) == []
    assert not any(tmp_path.iterdir())


def test_every_figure_is_written_and_the_confusion_counts_are_exact(tmp_path: Path):
    pipe = pipeline()
    splits, encoded, model = pipe.prepare(seed=0)
    seen = {}

    def confusion(matrix, labels, path, title=None):
        seen.update(matrix=matrix, labels=labels, title=title)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG stand-in")
        return path

    files = fsp.draw_first_spike_plots(pipe, model, encoded, 3, tmp_path, "test", epoch=5, resolution=20,
                                       confusion=confusion)
    names = {f.name for f in files}
    assert names == {fsp.OUTPUT_TIMES, fsp.HIDDEN_TIMES, fsp.WEIGHTS, fsp.CONFUSION, fsp.DECISION_MAP}
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files)
    x, y = splits.test.x[:, 0].numpy(), splits.test.y.numpy()
    predicted = np.where(x < 0.5, 0, 1)
    expected = np.zeros((3, 3), dtype=np.int64)
    for t, p in zip(y, predicted):
        expected[t, p] += 1
    assert seen["matrix"].tolist() == expected.tolist() and seen["matrix"].sum() == 40
    assert seen["labels"] == ["yang", "yin", "dot"] and seen["title"] == "test split, epoch 5"


def test_figures_from_hand_made_arrays(tmp_path: Path):
    times = np.array([[0.5, 1.0, INF], [0.7, 0.2, 1.0], [INF, INF, 0.3], [0.4, 0.9, 1.1]])
    labels = np.array([0, 1, 2, 0])
    assert fsp.plot_output_times(times, labels, tmp_path / "out.png").is_file()
    hidden = {"layers.0": np.array([[0.3, INF], [0.5, INF]]), "layers.2": np.full((2, 3), INF)}
    assert fsp.plot_hidden_times(hidden, tmp_path / "hidden.png").is_file()
    grid = np.zeros((5, 5), dtype=np.int64)
    grid[:, 3:] = 1
    grid[0, 0] = -1  # no output spike there
    points = np.array([[0.2, 0.5], [0.8, 0.5]])
    assert fsp.plot_decision_map(grid, points, np.array([0, 0]), np.array([0, 1]), tmp_path / "map.png").is_file()


def test_delays_are_shown_in_tau_s_not_as_their_raw_parameter():
    class SigmoidDelay(nn.Module):
        def __init__(self):
            super().__init__()
            self.theta = nn.Parameter(torch.tensor([0.0, 100.0]))

        def delays(self):
            return 0.5 + 2.0 * torch.sigmoid(self.theta)

    model = XOnly()
    model.delay_layer = SigmoidDelay()
    values = dict(fsp.parameter_values(model))
    assert list(values) == ["weight", "delay", "delay_layer: delays (tau_s)"]
    assert values["weight"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert values["delay_layer: delays (tau_s)"].tolist() == [1.5, 2.5]  # 0.5 + 2 sigmoid(0), 0.5 + 2 sigmoid(100)


def test_end_of_fit_figures_use_the_best_checkpoint_and_the_test_split(tmp_path: Path, monkeypatch):
    drawn = {}
    weights = fsp.plot_weight_histograms

    def spy(model, path, title=None):
        drawn.update(weight=model.weight.detach().clone(), title=title)
        return weights(model, path, title)

    monkeypatch.setattr(fsp, "plot_weight_histograms", spy)
    pipe = pipeline()
    splits, encoded, model = pipe.prepare(seed=0)
    best = XOnly()
    with torch.no_grad():
        best.weight.fill_(7.0)
    (tmp_path / "checkpoints").mkdir()
    torch.save({"epoch": 3, "seed": 0, "model": best.state_dict()}, tmp_path / "checkpoints" / "best.pt")
    state = SimpleNamespace(run_dir=tmp_path, model=model, epoch=9, pipeline=pipe,
                            extra={"encoded": encoded, "n_classes": 3})
    files = fsp.run_first_spike_plots(state)
    assert {f.name for f in files} == {fsp.OUTPUT_TIMES, fsp.HIDDEN_TIMES, fsp.WEIGHTS, fsp.DECISION_MAP}
    assert all(f.parent == tmp_path / "plots" for f in files)
    assert torch.equal(drawn["weight"], torch.full((2, 2), 7.0)) and drawn["title"] == "epoch 3"
    assert model.weight.detach().tolist() == [[1.0, 2.0], [3.0, 4.0]]  # the fit's model is left as it was
    assert fsp.run_first_spike_plots(SimpleNamespace(run_dir=None, extra={"encoded": encoded})) == []
