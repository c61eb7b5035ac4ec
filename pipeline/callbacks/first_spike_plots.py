"""The figures of a first-spike-time run (specs/first_spike.md, "Tools users expect"): sorted
output spike times per class, hidden spike-time histograms, weight histograms per layer, the
confusion matrix and, on Yin-Yang, the decision map (the model's class over the unit square with
the test points).

A model is a first-spike model when its readout gives output spike times
(``ReadoutOutput.times``); for any other model nothing is drawn. :class:`RunPlots` draws these at
the end of a fit (:func:`run_first_spike_plots`), ``python main.py eval RUN`` for a saved run
(:func:`draw_first_spike_plots`). Drawn on matplotlib's Agg canvas (no pyplot; imported only when
a figure is drawn).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from data.base import Split
from data.yinyang import CLASSES as YINYANG_CLASSES, R_BIG, YinYang
from network.events import ContinuousSpikes
from pipeline.batches import EncodedSplit, loss_input
from pipeline.callbacks.checkpoint import load_checkpoint
from tools.figures import agg_figure, save_figure

DECISION_MAP, OUTPUT_TIMES, HIDDEN_TIMES, WEIGHTS, CONFUSION = (
    "decision_map.png", "output_spike_times.png", "hidden_spike_times.png", "weight_histograms.png",
    "confusion_matrix.png")
#: splits in the order the end-of-fit figures look for one with samples
FIGURE_SPLITS = ("test", "val", "train")


@dataclass(frozen=True)
class FirstSpikeRecord:
    """What a first-spike model did on one split: ``targets`` and ``predicted`` classes ``[P]``,
    ``output_times`` ``[P, C]`` and per hidden (spiking, not the last) layer its spike times
    ``[P, N]`` (units of tau_s; ``inf``: no spike), keyed by layer (``layers.0``)."""

    targets: np.ndarray
    predicted: np.ndarray
    output_times: np.ndarray
    hidden: dict[str, np.ndarray]


def _hidden_times(traces: Sequence[Any]) -> dict[str, torch.Tensor]:
    """The continuous spike times of every spiking layer but the last, by its index in the model."""
    spiking = [(i, trace.out.times) for i, trace in enumerate(traces)
               if trace.spiking and isinstance(trace.out, ContinuousSpikes)]
    return {f"layers.{i}": times for i, times in spiking[:-1]}


@torch.no_grad()
def record_split(pipeline: Any, model: nn.Module, split: EncodedSplit, epoch: int = 0) -> FirstSpikeRecord | None:
    """Run ``model`` over a whole encoded split in the pipeline's evaluation batches; the classes are
    its loss's predictions (what the accuracy metrics count). None when the model gives no output
    spike times (not a first-spike model) or the split is empty."""
    training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {"targets": [], "predicted": [], "times": []}
    hidden: dict[str, list[torch.Tensor]] = {}
    try:
        for index in torch.arange(len(split), device=split.targets.device).split(pipeline.eval_batch_size):
            x, y, mask = split.batch(index)
            output = model(x)
            if output.readout.times is None:
                return None
            parts["targets"].append(y)
            parts["predicted"].append(pipeline.loss.predict(loss_input(output, y, mask, epoch)))
            parts["times"].append(output.readout.times)
            for name, times in _hidden_times(output.traces).items():
                hidden.setdefault(name, []).append(times)
    finally:
        model.train(training)
    if not parts["targets"]:
        return None
    joined = {key: torch.cat(values).detach().to("cpu", torch.float64 if key == "times" else torch.long).numpy()
              for key, values in parts.items()}
    hidden_times = {name: torch.cat(v).detach().to("cpu", torch.float64).numpy() for name, v in hidden.items()}
    return FirstSpikeRecord(joined["targets"], joined["predicted"], joined["times"], hidden_times)


def grid_points(resolution: int) -> np.ndarray:
    """The centres ``[R * R, 2]`` (x, y) of an R x R grid of cells over the unit square, row by row
    from y = 0 (row ``i`` has ``y = (i + 0.5) / R``, column ``j`` has ``x = (j + 0.5) / R``)."""
    centres = (np.arange(resolution) + 0.5) / resolution
    x, y = np.meshgrid(centres, centres)
    return np.column_stack([x.ravel(), y.ravel()])


@torch.no_grad()
def decision_grid(pipeline: Any, model: nn.Module, resolution: int = 100, epoch: int = 0) -> np.ndarray:
    """The class ``[R, R]`` the model gives each cell centre of :func:`grid_points` (row ``i``: y,
    column ``j``: x), the point fed as Yin-Yang features (x, y, 1 - x, 1 - y) through the run's
    encoder; -1 where the model gives no output spike times."""
    points = grid_points(resolution)
    features = torch.as_tensor(np.column_stack([points, 1.0 - points]))
    split = Split(features, torch.zeros(len(points), dtype=torch.long), torch.arange(len(points)))
    record = record_split(pipeline, model, pipeline.encode(split), epoch)
    classes = record.predicted if record is not None else np.full(len(points), -1)
    return classes.reshape(resolution, resolution)


# --- figures -----------------------------------------------------------------------------------
def _figure(size: tuple[float, float]) -> Any:
    return agg_figure(size)


def _save(figure: Any, path: str | Path) -> Path:
    return save_figure(figure, path, dpi=100)


def _class_colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    return [colormaps["tab10"](k % 10) for k in range(n)]


def plot_decision_map(classes: np.ndarray, points: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                      path: str | Path, class_names: Sequence[str] = YINYANG_CLASSES, title: str | None = None) -> Path:
    """The class regions ``classes`` ``[R, R]`` (:func:`decision_grid`) over the unit square, the
    symbol's outline, and ``points`` ``[P, 2]`` coloured by their true ``labels``; the points whose
    ``predicted`` class differs are circled in black and counted in the title."""
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    n = len(class_names)
    colors = _class_colors(n)
    figure = _figure((5.6, 5.0))
    axes = figure.add_subplot(1, 1, 1)
    regions = np.ma.masked_less(classes, 0)
    axes.imshow(regions, origin="lower", extent=(0.0, 1.0, 0.0, 1.0), cmap=ListedColormap(colors),
                vmin=-0.5, vmax=n - 0.5, alpha=0.35, interpolation="nearest")
    axes.add_patch(Circle((R_BIG, R_BIG), R_BIG, fill=False, color="black", linewidth=0.8))
    for k in range(n):
        chosen = labels == k
        axes.scatter(points[chosen, 0], points[chosen, 1], s=9, color=colors[k], linewidths=0)
    wrong = predicted != labels
    axes.scatter(points[wrong, 0], points[wrong, 1], s=36, facecolors="none", edgecolors="black", linewidths=0.8)
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[k], label=name)
               for k, name in enumerate(class_names)]
    handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="black",
                          label="misclassified"))
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    accuracy = 1.0 - float(wrong.mean()) if len(labels) else math.nan
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="x", ylabel="y", aspect="equal")
    axes.set_title((f"{title}: " if title else "") + f"{int(wrong.sum())} of {len(labels)} misclassified "
                   f"(accuracy {accuracy:.1%})", fontsize="medium")
    return _save(figure, path)


def plot_output_times(times: np.ndarray, labels: np.ndarray, path: str | Path,
                      class_names: Sequence[str] | None = None, title: str | None = None) -> Path:
    """One panel per true class: the spike time of every output neuron (colour) for each sample of
    that class, the samples sorted by the spike time of the label's neuron; samples where a neuron
    stayed silent show it as a cross at the top of the panel."""
    n_out = times.shape[1]
    names = list(class_names) if class_names is not None else [str(k) for k in range(n_out)]
    names += [str(k) for k in range(len(names), n_out)]
    classes = [k for k in range(n_out) if np.any(labels == k)]
    colors = _class_colors(n_out)
    finite = times[np.isfinite(times)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    margin = 0.06 * (high - low) or 0.1
    top = high + margin  # where the silent neurons' crosses go
    figure = _figure((3.6 * max(len(classes), 1) + 0.8, 3.4))
    for panel, k in enumerate(classes):
        axes = figure.add_subplot(1, max(len(classes), 1), panel + 1)
        own = times[labels == k]
        own = own[np.argsort(own[:, k], kind="stable")]
        rank = np.arange(len(own))
        for neuron in range(n_out):
            t = own[:, neuron]
            fired = np.isfinite(t)
            axes.scatter(rank[fired], t[fired], s=4, color=colors[neuron], linewidths=0)
            if (~fired).any():
                axes.scatter(rank[~fired], np.full((~fired).sum(), top), s=10, marker="x", color=colors[neuron],
                             linewidths=0.8)
        silent = int((~np.isfinite(own[:, k])).sum())
        axes.set(xlabel=f"sample of class {names[k]} (sorted)", ylim=(max(low - margin, 0.0), top + margin),
                 title=f"class {names[k]}: {len(own)} samples"
                 + (f", label neuron silent in {silent}" if silent else ""))
        axes.title.set_fontsize("small")
        if panel == 0:
            from matplotlib.lines import Line2D

            axes.set_ylabel("output spike time (tau_s)")
            handles = [Line2D([], [], marker="o", linestyle="", markersize=3, color=colors[n],
                              label=f"neuron {names[n]}") for n in range(n_out)]
            handles.append(Line2D([], [], marker="x", linestyle="", color="gray", label="no spike (drawn at the top)"))
            axes.legend(handles=handles, frameon=False, fontsize="x-small")
    if title:
        figure.suptitle(title, fontsize="medium")
    return _save(figure, path)


def plot_hidden_times(hidden: Mapping[str, np.ndarray], path: str | Path, title: str | None = None,
                      bins: int = 50) -> Path:
    """One histogram per hidden layer of its spike times (all samples and neurons); the title
    gives the fraction of (sample, neuron) pairs without a spike and the neurons that never fired."""
    figure = _figure((4.2 * max(len(hidden), 1) + 0.4, 3.2))
    for panel, (name, times) in enumerate(hidden.items()):
        axes = figure.add_subplot(1, max(len(hidden), 1), panel + 1)
        fired = np.isfinite(times)
        if fired.any():
            axes.hist(times[fired], bins=bins, color="tab:blue")
        dead = int((~fired.any(axis=0)).sum()) if times.size else 0
        axes.set(xlabel="spike time (tau_s)", ylabel="spikes" if panel == 0 else None)
        axes.set_title(f"{name}: {times.shape[1]} neurons, {1.0 - float(fired.mean()) if times.size else 0.0:.1%} "
                       f"silent pairs, {dead} never fire", fontsize="small")
    if title:
        figure.suptitle(title, fontsize="medium")
    return _save(figure, path)


def parameter_values(model: nn.Module) -> list[tuple[str, np.ndarray]]:
    """(label, flat values) of every parameter tensor of ``model``, by name; the parameter of a
    module that computes delays from it (``delays()``: DelGrad's sigmoid / clip / shift
    parametrisations) is shown as those delays in tau_s."""
    modules = dict(model.named_modules())
    values = []
    for name, param in model.named_parameters():
        owner_name = name.rpartition(".")[0]
        owner = modules.get(owner_name)
        if callable(getattr(owner, "delays", None)):
            label, tensor = f"{owner_name}: delays (tau_s)", owner.delays()
        else:
            label, tensor = name, param
        values.append((label, tensor.detach().to("cpu", torch.float64).reshape(-1).numpy()))
    return values


def plot_weight_histograms(model: nn.Module, path: str | Path, title: str | None = None, bins: int = 50) -> Path:
    """One histogram per parameter tensor of the model (weights; delays in tau_s), by its name
    (:func:`parameter_values`)."""
    named = parameter_values(model)
    columns = min(len(named), 3) or 1
    rows = math.ceil(len(named) / columns) or 1
    figure = _figure((4.0 * columns, 2.9 * rows))
    for panel, (name, values) in enumerate(named):
        axes = figure.add_subplot(rows, columns, panel + 1)
        axes.hist(values, bins=bins, color="tab:gray")
        axes.set_title(f"{name} ({values.size}): mean {values.mean():.3g}, std {values.std():.3g}",
                       fontsize="small")
    if title:
        figure.suptitle(title, fontsize="medium")
    return _save(figure, path)


def draw_first_spike_plots(pipeline: Any, model: nn.Module, encoded: Mapping[str, EncodedSplit], n_classes: int,
                           folder: str | Path, split: str = "test", epoch: int = 0, resolution: int = 100,
                           confusion: Callable[..., Path] | None = None) -> list[Path]:
    """This module's figures of ``model`` on ``split`` into ``folder``; returns the files written
    ([] for a model without output spike times). ``confusion``: the function that draws the
    confusion matrix (``plot_confusion(matrix, labels, path, title)``), None to leave it out. The
    decision map (a ``resolution`` x ``resolution`` grid) is drawn for the Yin-Yang data set only."""
    record = record_split(pipeline, model, encoded[split], epoch)
    if record is None:
        return []
    folder = Path(folder)
    yinyang = isinstance(pipeline.data, YinYang)
    names = list(YINYANG_CLASSES) if yinyang else [str(k) for k in range(n_classes)]
    about = f"{split} split, epoch {epoch}"
    written = [plot_output_times(record.output_times, record.targets, folder / OUTPUT_TIMES, names, about)]
    if record.hidden:
        written.append(plot_hidden_times(record.hidden, folder / HIDDEN_TIMES, about))
    written.append(plot_weight_histograms(model, folder / WEIGHTS, f"epoch {epoch}"))
    if confusion is not None:
        matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
        keep = (record.predicted >= 0) & (record.predicted < n_classes)
        np.add.at(matrix, (record.targets[keep], record.predicted[keep]), 1)
        written.append(confusion(matrix, names, folder / CONFUSION, title=about))
    if yinyang:
        grid = decision_grid(pipeline, model, resolution, epoch)
        written.append(plot_decision_map(grid, _points(pipeline, split), record.targets, record.predicted,
                                         folder / DECISION_MAP, names, about))
    return written


def _points(pipeline: Any, split: str) -> np.ndarray:
    """The (x, y) ``[P, 2]`` of the Yin-Yang samples of ``split`` (the encoded split holds only
    spike times); Yin-Yang's splits do not depend on the run's seed."""
    part = dict(pipeline.data.load(0).items())[split]
    return part.x[:, :2].to("cpu", torch.float64).numpy()


def run_first_spike_plots(state: Any, confusion: Callable[..., Path] | None = None) -> list[Path]:
    """The figures at the end of a fit into ``plots/`` of the run folder: the test split (else the
    validation or training split), with the weights of ``checkpoints/best.pt`` when the run kept
    one, else those at the end. [] without a run folder or for a model that is not first-spike."""
    encoded = state.extra.get("encoded") or {}
    split = next((s for s in FIGURE_SPLITS if s in encoded and len(encoded[s])), None)
    if state.run_dir is None or split is None:
        return []
    model, epoch = state.model, state.epoch
    best = Path(state.run_dir) / "checkpoints" / "best.pt"
    if best.is_file():
        ckpt = load_checkpoint(best, "cpu")
        model = copy.deepcopy(state.model)
        model.load_state_dict(ckpt["model"])
        epoch = int(ckpt["epoch"])
    return draw_first_spike_plots(state.pipeline, model, encoded, int(state.extra["n_classes"]),
                                  Path(state.run_dir) / "plots", split, epoch, confusion=confusion)
