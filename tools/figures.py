"""Matplotlib figures on the Agg canvas (no pyplot, no display), shared by the run-folder plots
(pipeline/callbacks), the spike recordings (tools/recordings.py) and the report (analysis/).
matplotlib is imported only when a figure is made, so the CLI starts without it."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def agg_figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Any:
    """A ``matplotlib.figure.Figure`` of ``figsize`` inches drawn on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: str | Path, dpi: int) -> Path:
    """Write ``figure`` to ``path`` (its folder made if missing) at ``dpi``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path
