"""Plots of an experiment as PNG files: learning curves, a metric against swept params, heatmaps.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so plotting never changes the
backend of a notebook or script that imports this module. Every band is the Student-t 95% CI of
the mean over the COMPLETED runs of a point (no band where fewer than two runs). Without an
explicit path, files go to ``outputs/<experiment>/report/``.
"""
from __future__ import annotations

import math
import numbers
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.frames import RunTable, as_list, read_run_table
from analysis.source import DB, Experiment, reading, report_folder, resolve_experiment
from experiment.store import ExperimentRecord
from analysis.stats import completed_values, group_stats, learning_curves
from settings.metrics import TRAIN_ACC, VAL_ACC

MAX_LEGEND = 20  # more lines than this get no legend
LOG_SPAN = 100.0  # a positive x-axis spanning more than two decades is drawn on a log scale


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_.") or "plot"


def _report_dir(record: ExperimentRecord) -> Path:
    return report_folder(record)


def _figure(size: tuple[float, float] = (6.4, 4.2)) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return [colormaps["viridis"](i / (n - 1)) for i in range(n)]


def _format(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _label(by: Sequence[str], key: Any) -> str:
    """``tau10`` for a trial or group, ``optimizer.lr=0.01, env.T=20`` for params."""
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join(_format(value) if column in ("trial", "group") else f"{column}={_format(value)}"
                     for column, value in zip(by, values))


def wants_log_axis(values: Sequence[float] | np.ndarray) -> bool:
    """True for positive finite values whose largest is more than 100x the smallest."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return values.size > 1 and bool(np.all(values > 0)) and values.max() / values.min() > LOG_SPAN


def _band(axes: Any, x: Any, line: pd.DataFrame, color: Any, label: str, marker: str | None = None) -> None:
    mean, half = line["mean"].to_numpy(float), line["ci95"].to_numpy(float)
    axes.plot(x, mean, color=color, label=label, marker=marker)
    axes.fill_between(x, mean - half, mean + half, color=color, alpha=0.2, linewidth=0)


def _legend(axes: Any, n_lines: int, title: str) -> None:
    if 1 < n_lines <= MAX_LEGEND or (n_lines == 1 and title):
        axes.legend(title=title or None, fontsize="small", title_fontsize="small")


def _title(record: ExperimentRecord, what: str) -> str:
    return f"{record.name} v{record.version}: {what}"


def plot_learning_curves(experiment: Experiment, metrics: str | Sequence[str] = (TRAIN_ACC, VAL_ACC),
                         by: str | Sequence[str] = "trial", out_dir: str | Path | None = None, db: DB = None,
                         version: int | None = None) -> list[Path]:
    """One PNG per metric in ``out_dir``, ``learning_curve_<metric>.png`` (``by="trial"``) or
    ``learning_curve_<metric>_by_<by>.png``: per epoch, the mean over the COMPLETED runs of each
    group of ``by`` with its 95% CI band, one line per group. Metrics the experiment never
    recorded are skipped; returns the files written."""
    from matplotlib.ticker import MaxNLocator

    by, keys = as_list(by), as_list(metrics)
    suffix = "" if by == ["trial"] else "_by_" + "_".join(map(_slug, by))
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        curves = learning_curves(record, keys, by, store)
    folder = Path(out_dir) if out_dir is not None else _report_dir(record)
    written = []
    for key in keys:
        data = curves[curves["key"] == key]
        if data.empty:
            continue
        figure, axes = _figure()
        groups = list(data.groupby(by, sort=False, dropna=False))
        for (group, line), color in zip(groups, _colors(len(groups))):
            _band(axes, line["epoch"].to_numpy(), line, color, _label(by, group))
        axes.set(xlabel="epoch", ylabel=key, title=_title(record, f"{key}, mean and 95% CI over repeats"))
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        _legend(axes, len(groups), "")
        written.append(_save(figure, folder / f"learning_curve_{_slug(key)}{suffix}.png"))
    return written


def _sweep_means(experiment: Experiment, metric: str, columns: Sequence[str], db: DB,
                 version: int | None) -> tuple[RunTable, pd.DataFrame]:
    """Mean, ci95 and n of ``metric`` over the COMPLETED runs per combination of ``columns``."""
    table = read_run_table(experiment, db, version)
    table.check_columns([metric, *columns], "`metric`, `x`, `y` and `hue`")
    stats = group_stats(completed_values(table, [metric]), columns, [metric], ("mean", "ci95", "n"))
    return table, stats.rename(columns={f"{metric}_{stat}": stat for stat in ("mean", "ci95", "n")})


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _sorted_values(values: pd.Series) -> list[Any]:
    unique = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(unique, key=lambda v: (isinstance(v, float) and math.isnan(v), v))
    except TypeError:  # text mixed with numbers
        return sorted(unique, key=str)


def plot_metric_vs_param(experiment: Experiment, metric: str, x: str, hue: str | None = None,
                         out: str | Path | None = None, db: DB = None, version: int | None = None) -> Path:
    """``metric`` (a summary column such as ``final_val_acc``) against the swept param ``x``: the
    mean over COMPLETED runs with its 95% CI band, one line per value of ``hue`` if given. A
    numeric ``x`` spanning more than two decades gets a log axis; a text ``x`` is categorical."""
    columns = [x] if hue is None else [hue, x]
    table, stats = _sweep_means(experiment, metric, columns, db, version)
    numeric = _is_numeric(stats[x])
    categories = _sorted_values(stats[x])
    position = (lambda v: v) if numeric else {v: i for i, v in enumerate(categories)}.get
    figure, axes = _figure()
    lines = [(None, stats)] if hue is None else list(stats.groupby(hue, sort=True, dropna=False))
    for (value, line), color in zip(lines, _colors(len(lines))):
        line = line.assign(_x=[position(v) for v in line[x]]).dropna(subset=["_x"]).sort_values("_x")
        label = "" if hue is None else _format(value)
        _band(axes, line["_x"].to_numpy(float), line, color, label, marker="o")
    if numeric and wants_log_axis(stats[x]):
        axes.set_xscale("log")
    if not numeric:
        axes.set_xticks(range(len(categories)), [_format(v) for v in categories])
    axes.set(xlabel=x, ylabel=metric, title=_title(table.experiment, f"{metric}, mean and 95% CI over repeats"))
    axes.grid(alpha=0.3)
    _legend(axes, len(lines) if hue is not None else 0, hue or "")
    name = f"{_slug(metric)}_vs_{_slug(x)}" + ("" if hue is None else f"_by_{_slug(hue)}") + ".png"
    return _save(figure, out if out is not None else _report_dir(table.experiment) / name)


def plot_heatmap(experiment: Experiment, metric: str, x: str, y: str, out: str | Path | None = None,
                 db: DB = None, version: int | None = None) -> Path:
    """The mean of ``metric`` over COMPLETED runs on the grid of two swept params ``x`` and
    ``y``, one annotated cell per combination (blank where no run completed)."""
    from matplotlib import colormaps

    table, stats = _sweep_means(experiment, metric, [y, x], db, version)
    stats = stats.dropna(subset=[x, y])
    xs, ys = _sorted_values(stats[x]), _sorted_values(stats[y])
    grid = np.full((len(ys), len(xs)), np.nan)
    column, row = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    for x_value, y_value, mean in zip(stats[x], stats[y], stats["mean"]):
        grid[row[y_value], column[x_value]] = mean
    figure, axes = _figure((max(4.0, 1.0 + 0.9 * len(xs)), max(3.0, 1.0 + 0.6 * len(ys))))
    image = axes.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto",
                        cmap=colormaps["viridis"].with_extremes(bad="0.9"))
    low, high = image.norm.vmin, image.norm.vmax
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            dark = high > low and (value - low) / (high - low) < 0.5
            axes.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize="small",
                      color="white" if dark else "black")
    axes.set_xticks(range(len(xs)), [_format(v) for v in xs])
    axes.set_yticks(range(len(ys)), [_format(v) for v in ys])
    axes.set(xlabel=x, ylabel=y, title=_title(table.experiment, f"mean {metric}"))
    figure.colorbar(image, ax=axes, label=metric)
    name = f"{_slug(metric)}_heatmap_{_slug(y)}_vs_{_slug(x)}.png"
    return _save(figure, out if out is not None else _report_dir(table.experiment) / name)
