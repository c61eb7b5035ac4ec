"""The plots of one run, written into its folder (``plots/``) when it completes.

Drawn from the run's own metric history on matplotlib's Agg canvas (no pyplot, no database), so
a worker can draw them right after training.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

SPLITS = ("train", "val", "test")


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
            key = f"{split}_{what}"
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
