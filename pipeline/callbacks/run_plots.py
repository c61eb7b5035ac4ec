"""RunPlots: the plots of one run, written into its folder (``plots/``) when the fit ends.

Drawn from the run's own metric history and model on matplotlib's Agg canvas (no pyplot, no
database; matplotlib is imported only when a plot is drawn).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.metrics import SPLITS, split_metric
from settings.registries import CALLBACKS


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
        except Exception as exc:  # noqa: BLE001 (a figure must never cost a trained run)
            self.problem = f"could not draw plots/: {type(exc).__name__}: {exc}"

    def state_dict(self) -> dict:
        return {"initial": self.initial} if self.initial else {}

    def load_state_dict(self, state: dict) -> None:
        self.initial = {name: dict(values) for name, values in state.get("initial", {}).items()}


RESONATOR_PLOT = "omega_b_offset.png"


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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(9.0, 3.6))  # a fixed layout: constrained layout would draw it twice
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.96, wspace=0.22)
    FigureCanvasAgg(figure)
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
    path = Path(folder) / "learning_curves.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return [path]


def plot_resonators(model: nn.Module, initial: Mapping[str, Mapping[str, torch.Tensor]],
                    path: str | Path) -> Path | None:
    """One panel per resonator kernel of ``model`` that ``initial`` holds: each neuron's
    ``omega`` (x) against its damping offset ``-|b_offset|`` (y), at the start of training
    (``initial``, as :func:`resonator_values` returns) and learned (the model now), with the
    divergence boundary ``p(omega)`` (network.kernels.resonators; the Euler step of a neuron with
    damping above the curve grows) of the kernel's Euler step: its ``delta`` (the resonators'
    step in model time), else its ``dt``; no curve for a kernel with neither. Returns the file,
    or None when the model has no such kernel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from network.kernels.resonators import divergence_boundary

    learned = resonator_values(model)
    names = [name for name in learned if name in initial]
    if not names:
        return None
    figure = Figure(figsize=(4.8 * len(names), 4.0), layout="constrained")
    FigureCanvasAgg(figure)
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
