"""RunPlots: the plots of one run, written into its folder (``plots/``) when the fit ends.

Drawn from the run's own metric history and model on matplotlib's Agg canvas (no pyplot, no
database; matplotlib is imported only when a plot is drawn).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from pipeline.batches import EncodedSplit, loss_input
from pipeline.callbacks.base import Callback
from pipeline.callbacks.checkpoint import load_checkpoint
from pipeline.state import FitState
from settings.metrics import SPLITS, split_metric
from settings.registries import CALLBACKS
from tools.figures import agg_figure, save_figure


@CALLBACKS.register
class RunPlots(Callback):
    """``plots/learning_curves.png`` in the run folder at the end of the fit: loss and accuracy
    per epoch for each split; for a model with resonator kernels (per-neuron ``omega`` and
    ``b_offset``: RF, BRF, BHRF) also ``plots/omega_b_offset.png``, initial against learned
    values with the divergence boundary. A plotting problem never fails the run: it is kept in
    ``problem`` (one line) and the run goes on. ``run_plots: true`` in experiment.yaml adds it
    to every run.

    The initial values are taken when the fit starts and kept in the checkpoint, so a resumed
    run still plots those of its first epoch (:func:`plot_resonators`).

    For a classifier it also writes the confusion matrix of the test split (the validation or
    training split when the run has no test samples) as ``confusion.json`` (:func:`write_confusion`)
    and ``plots/confusion_matrix.png`` (:func:`plot_confusion`), with the weights of
    ``checkpoints/best.pt`` when the run kept one (the selected epoch), else those at the end.
    For a first-spike model (output spike times) it adds the figures of
    :mod:`pipeline.callbacks.first_spike_plots` (output and hidden spike times, weights, the
    Yin-Yang decision map) from the same split and weights.
    """

    order = 95

    def __init__(self) -> None:
        self.problem: str | None = None
        self.initial: dict[str, dict[str, torch.Tensor]] = {}

    def on_fit_start(self, state: FitState) -> None:
        if not self.initial:  # a resumed fit restored them from its checkpoint
            self.initial = resonator_values(state.model)

    def on_fit_end(self, state: FitState) -> None:
        if state.run_dir is None:
            return
        folder = Path(state.run_dir) / "plots"
        try:
            plot_run_history(state.history, folder)
            if self.initial:
                plot_resonators(state.model, self.initial, folder / RESONATOR_PLOT)
            if getattr(state, "extra", {}).get("encoded"):  # the fit's encoded splits
                run_confusion(state)
                from pipeline.callbacks.first_spike_plots import run_first_spike_plots

                run_first_spike_plots(state)  # first-spike models only (output spike times)
        except Exception as exc:  # noqa: BLE001 (a figure must never cost a trained run)
            self.problem = f"could not draw plots/: {type(exc).__name__}: {exc}"

    def state_dict(self) -> dict:
        return {"initial": self.initial} if self.initial else {}

    def load_state_dict(self, state: dict) -> None:
        self.initial = {name: dict(values) for name, values in state.get("initial", {}).items()}


RESONATOR_PLOT = "omega_b_offset.png"
CONFUSION_PLOT, CONFUSION_FILE = "confusion_matrix.png", "confusion.json"
CONFUSION_SPLITS = ("test", "val", "train")  # the first with samples is the one counted


def resonator_kernels(model: nn.Module) -> dict[str, nn.Module]:
    """The modules of ``model`` with per-neuron tensors ``omega`` and ``b_offset`` (resonator
    kernels), by their module name (``layers.0.kernel``)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(getattr(module, "omega", None), torch.Tensor)
            and isinstance(getattr(module, "b_offset", None), torch.Tensor)}


def resonator_values(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """A copy of ``omega`` and ``b_offset`` ``[N]`` of every resonator kernel, on the CPU."""
    return {name: {key: getattr(module, key).detach().to("cpu", torch.float64).clone().reshape(-1)
                   for key in ("omega", "b_offset")}
            for name, module in resonator_kernels(model).items()}


def plot_run_history(history: Sequence[Mapping[str, float]], folder: str | Path) -> list[Path]:
    """``learning_curves.png``: loss and accuracy per epoch for each split the run has (epoch 0
    is the evaluation before training). Returns the files written."""
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure = agg_figure((9.0, 3.6), layout=None)  # a fixed layout: constrained layout would draw it twice
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.96, wspace=0.22)
    drawn = False
    for i, what in enumerate(("loss", "acc")):
        axes = figure.add_subplot(1, 2, i + 1)
        for split in SPLITS:
            key = split_metric(split, what)
            values = [row.get(key, math.nan) for row in history]
            if any(v == v for v in values):  # not all NaN
                axes.plot(epochs, values, marker="." if len(epochs) <= 40 else None, label=split)
                drawn = True
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("accuracy" if what == "acc" else "loss")
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(frameon=False)
    if not drawn:
        return []
    return [save_figure(figure, Path(folder) / "learning_curves.png", dpi=100)]


def plot_resonators(model: nn.Module, initial: Mapping[str, Mapping[str, torch.Tensor]],
                    path: str | Path) -> Path | None:
    """One panel per resonator kernel of ``model`` that ``initial`` holds: each neuron's
    ``omega`` (x) against its damping offset ``-|b_offset|`` (y), at the start of training
    (``initial``, as :func:`resonator_values` returns) and learned (the model now), with the
    divergence boundary ``p(omega)`` (network.kernels.resonators; the Euler step of a neuron with
    damping above the curve grows) of the kernel's Euler step: its ``delta`` (the resonators'
    step in model time), else its ``dt``; no curve for a kernel with neither. Returns the file,
    or None when the model has no such kernel."""
    from network.kernels.resonators import divergence_boundary

    learned = resonator_values(model)
    names = [name for name in learned if name in initial]
    if not names:
        return None
    figure = agg_figure((4.8 * len(names), 4.0))
    kernels = resonator_kernels(model)
    for i, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), i + 1)
        for values, color, label in ((initial[name], "tab:blue", "initial"), (learned[name], "tab:orange", "learned")):
            axes.scatter(values["omega"].numpy(), -values["b_offset"].abs().numpy(), s=10, color=color,
                         alpha=0.7, linewidths=0, label=label)
        dt = getattr(kernels[name], "delta", getattr(kernels[name], "dt", None))
        if isinstance(dt, (int, float)) and not isinstance(dt, bool) and dt > 0:
            omegas = torch.cat([initial[name]["omega"], learned[name]["omega"]])
            high = min(float(omegas.abs().max()) * 1.05, 1.0 / dt) or 1.0 / dt
            low = -high if float(omegas.min()) < 0 else 0.0
            grid = torch.linspace(low, high, 200, dtype=torch.float64)
            axes.plot(grid.numpy(), divergence_boundary(grid, float(dt)).numpy(), color="black", linewidth=1,
                      label=f"divergence boundary p(omega), step {dt:g}")
        axes.set(xlabel="omega", ylabel="-|b_offset|", title=name)
        axes.grid(alpha=0.3)
        axes.legend(frameon=False, fontsize="small")
    return save_figure(figure, path, dpi=100)


# --- confusion matrix ------------------------------------------------------------------------
def confusion_matrix(predicted: torch.Tensor, targets: torch.Tensor, n_classes: int,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """``[C, C]`` counts, row = true class, column = predicted class, over samples (targets
    ``[B]``) or over the steps a mask keeps (per-step targets ``[B, T]``); targets below 0 and
    predictions outside ``0..C-1`` never count."""
    keep = (targets >= 0) & (predicted >= 0) & (predicted < n_classes)
    if mask is not None:
        keep &= mask.to(torch.bool)
    pairs = (targets[keep] * n_classes + predicted[keep]).reshape(-1).to("cpu", torch.long)
    return torch.bincount(pairs, minlength=n_classes * n_classes)[: n_classes * n_classes].reshape(n_classes, n_classes)


def per_class_accuracy(matrix: torch.Tensor) -> list[float]:
    """The fraction of each class's samples predicted as that class (the diagonal over the row
    sums); NaN for a class with no samples. Equals the runs' ``<split>_acc/label_<k>``."""
    rows = matrix.sum(dim=1)
    return [float(matrix[k, k]) / float(rows[k]) if rows[k] else math.nan for k in range(matrix.shape[0])]


@torch.no_grad()
def split_confusion(pipeline: Any, model: nn.Module, split: EncodedSplit, n_classes: int,
                    epoch: int = 0) -> torch.Tensor:
    """The confusion matrix of ``model`` on a whole encoded split, in the pipeline's evaluation
    batches, with its loss's predictions (what the accuracy metrics count)."""
    training = model.training
    model.eval()
    total = torch.zeros(n_classes, n_classes, dtype=torch.long)
    try:
        for index in torch.arange(len(split), device=split.targets.device).split(pipeline.eval_batch_size):
            x, y, mask = split.batch(index)
            output = model(x)
            total += confusion_matrix(pipeline.loss.predict(loss_input(output, y, mask, epoch)), y, n_classes, mask)
    finally:
        model.train(training)
    return total


def run_confusion(state: FitState) -> Path | None:
    """The confusion matrix of a finished fit (see :class:`RunPlots`): ``confusion.json`` and
    ``plots/confusion_matrix.png`` in the run folder; returns the JSON file (None without a run
    folder or a split with samples)."""
    encoded = state.extra["encoded"]
    split = next((s for s in CONFUSION_SPLITS if s in encoded and len(encoded[s])), None)
    if state.run_dir is None or split is None:
        return None
    model, epoch, weights = state.model, state.epoch, "end"
    best = Path(state.run_dir) / "checkpoints" / "best.pt"
    if best.is_file():
        ckpt = load_checkpoint(best, "cpu")
        model = copy.deepcopy(state.model)
        model.load_state_dict(ckpt["model"])
        epoch, weights = int(ckpt["epoch"]), "best"
    n_classes = int(state.extra["n_classes"])
    matrix = split_confusion(state.pipeline, model, encoded[split], n_classes, epoch)
    labels = [str(k) for k in range(n_classes)]
    plot_confusion(matrix, labels, Path(state.run_dir) / "plots" / CONFUSION_PLOT,
                   title=f"{split} split, epoch {epoch} ({'best checkpoint' if weights == 'best' else 'end of fit'})")
    return write_confusion(matrix, labels, Path(state.run_dir) / CONFUSION_FILE, split=split, epoch=epoch,
                           weights=weights)


def write_confusion(matrix: torch.Tensor, labels: Sequence[str], path: str | Path, **about: Any) -> Path:
    """``path`` as JSON: ``matrix`` (rows true, columns predicted), ``labels``, ``per_class_accuracy``
    (null for a class without samples), ``accuracy``, ``n`` and the keys of ``about`` (split,
    epoch, weights: "best" or "end")."""
    accuracy = float(matrix.diagonal().sum()) / max(int(matrix.sum()), 1)
    document = {**about, "labels": list(labels), "matrix": matrix.tolist(), "n": int(matrix.sum()),
                "accuracy": accuracy,
                "per_class_accuracy": [None if math.isnan(a) else a for a in per_class_accuracy(matrix)]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


def plot_confusion(matrix: torch.Tensor | Sequence[Sequence[int]], labels: Sequence[str], path: str | Path,
                   title: str | None = None) -> Path:
    """A confusion matrix as a heatmap: rows true class, columns predicted, colour the fraction of
    the row (so rare classes read as well as common ones), each cell's count written in it, and
    each class's accuracy (the diagonal fraction) beside its row."""
    counts = torch.as_tensor(matrix, dtype=torch.long)
    n = counts.shape[0]
    rows = counts.sum(dim=1, keepdim=True).clamp(min=1)
    fraction = (counts.double() / rows.double()).numpy()
    accuracy = per_class_accuracy(counts)
    side = min(2.0 + 0.55 * n, 14.0)
    figure = agg_figure((side + 1.6, side))
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                axes.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize="small",
                          color="white" if fraction[i, j] > 0.6 else "black")
    axes.set_xticks(range(n), list(labels), rotation=90 if n > 12 else 0)
    axes.set_yticks(range(n), [f"{label} ({'-' if math.isnan(a) else f'{a:.0%}'})"
                               for label, a in zip(labels, accuracy)])
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class (accuracy)")
    total = int(counts.sum())
    overall = float(counts.diagonal().sum()) / max(total, 1)
    axes.set_title((f"{title}: " if title else "") + f"accuracy {overall:.1%} of {total}", fontsize="medium")
    figure.colorbar(image, ax=axes, label="fraction of the true class", shrink=0.8)
    return save_figure(figure, path, dpi=100)
