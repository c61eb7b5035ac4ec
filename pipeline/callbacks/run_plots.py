"""RunPlots: the plots of one run, written into its folder (``plots/``) when the fit ends.

Drawn from the run's own metric history on matplotlib's Agg canvas (no pyplot, no database;
matplotlib is imported only when a plot is drawn).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.metrics import SPLITS, split_metric
from settings.registries import CALLBACKS


@CALLBACKS.register
class RunPlots(Callback):
    """``plots/learning_curves.png`` in the run folder at the end of the fit: loss and accuracy
    per epoch for each split. A plotting problem never fails the run: it is kept in ``problem``
    (one line) and the run goes on. ``run_plots: true`` in experiment.yaml adds it to every run.
    """

    order = 95

    def __init__(self) -> None:
        self.problem: str | None = None

    def on_fit_end(self, state: FitState) -> None:
        if state.run_dir is None:
            return
        try:
            plot_run_history(state.history, Path(state.run_dir) / "plots")
        except Exception as exc:  # noqa: BLE001 (a figure must never cost a trained run)
            self.problem = f"could not draw plots/: {type(exc).__name__}: {exc}"


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
