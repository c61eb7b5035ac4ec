"""Plots of an experiment as PNG files: learning curves, a metric against swept params, heatmaps.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so plotting never changes the
backend of a notebook or script that imports this module. What the marks mean:

- a line is the mean over the COMPLETED runs of a point; its legend entry says n;
- a shaded band is the 95% bootstrap percentile CI of that mean, drawn only where n >= 3 and
  clipped to the metric's range (analysis.intervals); where n < 3 the single runs are drawn as
  dots instead, and a title mentions a band only when one is drawn;
- search samples (random / TPE) are crosses, never joined to each other or to grid means;
- a param that trials.yaml searched log-uniformly or generated with ``logspace``, or whose values
  span more than 1.5 decades, gets a log axis (analysis.sweeps); labels carry units (tau in ms).

Learning curves of more than ``MAX_LINES`` groups are split into small multiples (one panel per
group, shared axes; at most ``MAX_PANELS``, the best by the final mean when there are more), or
restricted to the best ``top_k``. Without an explicit path, files go to
``outputs/<experiment>/report/``.
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
from analysis.intervals import BAND_NAME, MIN_BAND_N, lower_is_better, mean_bands, metric_range
from analysis.source import DB, Experiment, reading, report_folder, resolve_experiment
from analysis.stats import curve_values
from analysis.sweeps import GRID, SEARCH, SweepLayout, axis_label, sweep_layout, unit, wants_log_axis
from experiment.store import ExperimentRecord
from settings.metrics import TRAIN_ACC, VAL_ACC
from tools.figures import agg_figure, save_figure

__all__ = ["learning_curve_figures", "metric_vs_param_figure", "plot_heatmap", "plot_learning_curves",
           "plot_metric_vs_param", "plot_search_scatter", "wants_log_axis"]

MAX_LEGEND = 20  # more lines than this get no legend
MAX_LINES = 6  # more groups than this: small multiples
MAX_PANELS = 24


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_.") or "plot"


def _report_dir(record: ExperimentRecord) -> Path:
    return report_folder(record)


def _figure(size: tuple[float, float] = (6.4, 4.2)) -> tuple[Any, Any]:
    figure = agg_figure(size)
    return figure, figure.add_subplot()


def _save(figure: Any, path: str | Path) -> Path:
    return save_figure(figure, path, dpi=120)


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


def _legend(axes: Any, n_lines: int, title: str, extra: Sequence[Any] = ()) -> None:
    handles, labels = axes.get_legend_handles_labels()
    if not (1 < n_lines <= MAX_LEGEND or (n_lines == 1 and title)):
        handles, labels = [], []
    handles, labels = handles + [h for h in extra], labels + [h.get_label() for h in extra]
    if handles:
        axes.legend(handles, labels, title=title or None, fontsize="small", title_fontsize="small")


def _title(record: ExperimentRecord, what: str) -> str:
    return f"{record.name} v{record.version}: {what}"


def _key_proxies(band: bool, dots: bool, search: int = 0) -> list[Any]:
    """Legend entries saying what the shading, the dots and the crosses are."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    proxies = []
    if band:
        proxies.append(Patch(color="0.5", alpha=0.3, label=f"{BAND_NAME} (n >= {MIN_BAND_N})"))
    if dots:
        proxies.append(Line2D([], [], linestyle="none", marker="o", color="0.4", markersize=4,
                              label=f"single runs (points with n < {MIN_BAND_N})"))
    return proxies


def _mean_line(axes: Any, x: np.ndarray, stats: pd.DataFrame, raw: list[np.ndarray], color: Any, label: str,
               marker: str | None = None, connect: bool = True) -> tuple[bool, bool]:
    """The mean (a line, or markers when not ``connect``), its band where n >= MIN_BAND_N and the
    single values where n < MIN_BAND_N. ``raw[i]``: the values behind point i. Returns (band drawn,
    dots drawn)."""
    mean, lo, hi = (stats[c].to_numpy(float) for c in ("mean", "lo", "hi"))
    n = stats["n"].to_numpy(int)
    shown = n > 0
    axes.plot(x[shown], mean[shown], color=color, label=label, marker=marker,
              linestyle="-" if connect else "none")
    banded = shown & (n >= MIN_BAND_N) & np.isfinite(lo) & np.isfinite(hi)
    if banded.any():
        if connect:
            axes.fill_between(x, np.where(banded, lo, np.nan), np.where(banded, hi, np.nan), where=banded,
                              color=color, alpha=0.2, linewidth=0)
        else:
            axes.errorbar(x[banded], mean[banded], yerr=[mean[banded] - lo[banded], hi[banded] - mean[banded]],
                          color=color, linestyle="none", capsize=4)
    few = [i for i in range(len(x)) if 0 < n[i] < MIN_BAND_N]
    for i in few:
        axes.scatter(np.full(raw[i].size, x[i]), raw[i], color=color, s=14, alpha=0.7, linewidths=0, zorder=3)
    return bool(banded.any()), bool(few)


def _n_text(n: pd.Series | np.ndarray) -> str:
    values = sorted({int(v) for v in np.asarray(n) if v > 0})
    if not values:
        return "n=0"
    return f"n={values[0]}" if len(values) == 1 else f"n={values[0]}-{values[-1]}"


def _final_means(values: pd.DataFrame, by: list[str]) -> pd.Series:
    """Per group of ``by`` (in order): the mean value at the group's last epoch."""
    last = values[values["epoch"] == values.groupby(by, sort=False, dropna=False)["epoch"].transform("max")]
    return last.groupby(by, sort=False, dropna=False)["value"].mean()


def learning_curve_figures(experiment: Experiment, metrics: str | Sequence[str] = (TRAIN_ACC, VAL_ACC),
                           by: str | Sequence[str] = "trial", db: DB = None, version: int | None = None,
                           top_k: int | None = None) -> tuple[ExperimentRecord, dict[str, Any]]:
    """The learning-curve figures of :func:`plot_learning_curves`, not saved: the experiment's
    record and metric -> Figure for every metric the runs recorded."""
    by, keys = as_list(by), as_list(metrics)
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k}")
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        values = curve_values(record, keys, by, store)
    figures = {}
    for key in keys:
        data = values[values["key"] == key]
        if not data.empty:
            figures[key] = _curve_figure(record, key, data, by, top_k)
    return record, figures


def _curve_figure(record: ExperimentRecord, key: str, data: pd.DataFrame, by: list[str], top_k: int | None) -> Any:
    from matplotlib.ticker import MaxNLocator

    groups = list(data.groupby(by, sort=False, dropna=False))
    total, note = len(groups), ""
    limit = top_k if top_k is not None else (MAX_PANELS if total > MAX_LINES else None)
    if limit is not None and total > limit:
        final = _final_means(data, by)
        ranked = final.sort_values(ascending=lower_is_better(key), kind="stable").index[:limit]
        keep = {k if isinstance(k, tuple) else (k,) for k in ranked}
        groups = [(g, part) for g, part in groups if (g if isinstance(g, tuple) else (g,)) in keep]
        note = f"; top {len(groups)} of {total} by final mean"
    panels = len(groups) > MAX_LINES
    if panels:
        columns = min(4, len(groups))
        rows = -(-len(groups) // columns)
        figure = agg_figure((3.1 * columns + 0.5, 2.4 * rows + 0.9))
        grid = figure.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
        for axes in grid[len(groups):]:
            axes.set_visible(False)
    else:
        figure, single = _figure()
        grid = [single] * max(len(groups), 1)
    band = dots = False
    colors = _colors(len(groups)) if not panels else ["tab:blue"] * len(groups)
    for (group, part), color, axes in zip(groups, colors, grid):
        stats = mean_bands(part, ["epoch"], "value", key).sort_values("epoch")
        raw = [part.loc[part["epoch"] == e, "value"].to_numpy(float) for e in stats["epoch"]]
        label = f"{_label(by, group)} ({_n_text(stats['n'])})"
        drew = _mean_line(axes, stats["epoch"].to_numpy(float), stats, raw, color, label)
        band, dots = band or drew[0], dots or drew[1]
        if panels:
            axes.set_title(label, fontsize="small")
    low, high = metric_range(key)
    for axes in (grid[:len(groups)] if panels else grid[:1]):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if (low, high) == (0.0, 1.0):
            axes.set_ylim(-0.02, 1.02)
    what = f"{key}, mean over repeats" + (f" with {BAND_NAME}" if band else "") + note
    if panels:
        key_text = "; ".join(([f"shaded: {BAND_NAME} (n >= {MIN_BAND_N})"] if band else [])
                             + ([f"dots: single runs where a point has n < {MIN_BAND_N}"] if dots else []))
        figure.suptitle(_title(record, what) + (f"\n{key_text}" if key_text else ""), fontsize="medium")
        figure.supxlabel("epoch", fontsize="small")
        figure.supylabel(axis_label(key), fontsize="small")
    else:
        axes = grid[0]
        axes.set(xlabel="epoch", ylabel=axis_label(key), title=_title(record, what))
        axes.title.set_fontsize("medium")
        _legend(axes, len(groups), "", _key_proxies(band, dots))
    return figure


def plot_learning_curves(experiment: Experiment, metrics: str | Sequence[str] = (TRAIN_ACC, VAL_ACC),
                         by: str | Sequence[str] = "trial", out_dir: str | Path | None = None, db: DB = None,
                         version: int | None = None, top_k: int | None = None) -> list[Path]:
    """One PNG per metric in ``out_dir``, ``learning_curve_<metric>.png`` (``by="trial"``) or
    ``learning_curve_<metric>_by_<by>.png``: per epoch, the mean over the COMPLETED runs of each
    group of ``by`` (band or dots: the module docs), one line per group, small multiples past
    ``MAX_LINES`` groups; ``top_k`` keeps the best k groups by their final mean (lowest first for
    losses). Metrics the experiment never recorded are skipped; returns the files written."""
    by = as_list(by)
    suffix = "" if by == ["trial"] else "_by_" + "_".join(map(_slug, by))
    record, figures = learning_curve_figures(experiment, metrics, by, db, version, top_k)
    folder = Path(out_dir) if out_dir is not None else _report_dir(record)
    return [_save(figure, folder / f"learning_curve_{_slug(key)}{suffix}.png") for key, figure in figures.items()]


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _sorted_values(values: pd.Series) -> list[Any]:
    unique = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(unique, key=lambda v: (isinstance(v, float) and math.isnan(v), v))
    except TypeError:  # text mixed with numbers
        return sorted(unique, key=str)


def _table_and_layout(experiment: Experiment, db: DB, version: int | None) -> tuple[RunTable, SweepLayout]:
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        return read_run_table(record, store), sweep_layout(store, record)


def _path_of(table: RunTable, column: str) -> str:
    """The param path behind a load_runs column (``param.epochs`` -> ``epochs``)."""
    return next((path for path, name in table.param_columns.items() if name == column), column)


def _line_trials(table: RunTable, layout: SweepLayout, params: Sequence[str]) -> list[str]:
    """Trials whose means may be joined along ``params``: the grid points sweeping all of them,
    else the trials that are not search samples, if ``params`` differ among them."""
    paths = [_path_of(table, p) for p in params]
    grid = [t for t in layout.trials(GRID) if all(p in layout.swept[t] for p in paths)]
    if grid:
        return grid
    others = [t for t, kind in layout.kind.items() if kind != SEARCH]
    values = table.runs.loc[table.runs["trial"].isin(others), list(params)]
    return others if len(values.drop_duplicates()) > 1 else []


def metric_vs_param_figure(experiment: Experiment, metric: str, x: str, hue: str | None = None, db: DB = None,
                           version: int | None = None) -> tuple[ExperimentRecord, Any]:
    """The figure of :func:`plot_metric_vs_param`, not saved, with the experiment's record."""
    table, layout = _table_and_layout(experiment, db, version)
    columns = [x] if hue is None else [hue, x]
    table.check_columns([metric, *columns], "`metric`, `x` and `hue`")
    frame = table.completed()
    numeric = _is_numeric(table.runs[x])
    categories = _sorted_values(table.runs[x])
    position = (lambda v: v) if numeric else {v: i for i, v in enumerate(categories)}.get
    lines_frame = frame[frame["trial"].isin(_line_trials(table, layout, [x] if hue is None else [x, hue]))]
    search_frame = frame[frame["trial"].isin(layout.trials(SEARCH, _path_of(table, x)))]
    figure, axes = _figure()
    lines = [] if lines_frame.empty else [(None, lines_frame)] if hue is None else list(
        lines_frame.groupby(hue, sort=True, dropna=False))
    what_means = "grid means" if set(lines_frame["trial"]) & set(layout.trials(GRID)) else "trial means"
    hue_unit = f" {unit(hue)}" if hue is not None and unit(hue) else ""
    band = dots = False
    for (value, part), color in zip(lines, _colors(len(lines))):
        stats = mean_bands(part, [x], metric).assign(_x=lambda f: [position(v) for v in f[x]])
        stats = stats.dropna(subset=["_x"]).sort_values("_x")
        raw = [part.loc[part[x] == v, metric].to_numpy(float) for v in stats[x]]
        raw = [r[np.isfinite(r)] for r in raw]
        name = what_means if hue is None else f"{hue}={_format(value)}{hue_unit}"
        label = f"{name} ({_n_text(stats['n'])} per point)"
        drew = _mean_line(axes, stats["_x"].to_numpy(float), stats, raw, color, label, marker="o", connect=numeric)
        band, dots = band or drew[0], dots or drew[1]
    for group, part in search_frame.groupby("group", sort=False):
        axes.scatter([position(v) for v in part[x]], part[metric], marker="x", color="black", s=30, zorder=4,
                     label=f"search {group}: {len(part)} sampled runs (not joined)")
    if numeric and wants_log_axis(table.runs[x], _path_of(table, x), layout):
        axes.set_xscale("log")
    if not numeric:
        axes.set_xticks(range(len(categories)), [_format(v) for v in categories],
                        rotation=30 if len(categories) > 4 else 0, ha="right" if len(categories) > 4 else "center")
    low, high = metric_range(metric)
    if (low, high) == (0.0, 1.0):
        axes.set_ylim(max(-0.02, axes.get_ylim()[0]), min(1.02, axes.get_ylim()[1]))
    what = f"{metric}, mean over repeats" + (f" with {BAND_NAME}" if band else "")
    axes.set(xlabel=axis_label(x), ylabel=axis_label(metric), title=_title(table.experiment, what))
    axes.title.set_fontsize("medium")
    axes.grid(alpha=0.3)
    n_entries = len(lines) + search_frame["group"].nunique()
    _legend(axes, max(n_entries, 2), "", _key_proxies(band, dots))
    return table.experiment, figure


def plot_metric_vs_param(experiment: Experiment, metric: str, x: str, hue: str | None = None,
                         out: str | Path | None = None, db: DB = None, version: int | None = None) -> Path:
    """``metric`` (a summary column such as ``final_val_acc``) against the swept param ``x``: the
    means of the grid points (or of the plain trials) over their COMPLETED runs, joined along a
    numeric ``x`` (markers with error bars for a text ``x``), one line per value of ``hue`` if
    given, and the samples of searches over ``x`` as separate crosses; bands, dots and log axes as
    the module docs say."""
    record, figure = metric_vs_param_figure(experiment, metric, x, hue, db, version)
    name = f"{_slug(metric)}_vs_{_slug(x)}" + ("" if hue is None else f"_by_{_slug(hue)}") + ".png"
    return _save(figure, out if out is not None else _report_dir(record) / name)


def plot_heatmap(experiment: Experiment, metric: str, x: str, y: str, out: str | Path | None = None,
                 db: DB = None, version: int | None = None) -> Path:
    """The mean of ``metric`` over COMPLETED runs on the grid of two swept params ``x`` and
    ``y`` (grid points only: search samples are :func:`plot_search_scatter`'s), one cell per
    combination annotated with the mean and n (grey where no run completed)."""
    from matplotlib import colormaps

    table, layout = _table_and_layout(experiment, db, version)
    table.check_columns([metric, x, y], "`metric`, `x` and `y`")
    frame = table.completed()
    frame = frame[frame["trial"].isin(_line_trials(table, layout, [x, y]))]
    stats = mean_bands(frame, [y, x], metric).dropna(subset=[x, y])
    cells = frame.drop_duplicates(subset=[x, y]).dropna(subset=[x, y])
    xs, ys = _sorted_values(cells[x]), _sorted_values(cells[y])
    grid, counts = np.full((len(ys), len(xs)), np.nan), np.zeros((len(ys), len(xs)), dtype=int)
    column, row = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    for x_value, y_value, mean, n in zip(stats[x], stats[y], stats["mean"], stats["n"]):
        grid[row[y_value], column[x_value]], counts[row[y_value], column[x_value]] = mean, n
    figure, axes = _figure((max(4.5, 1.6 + 1.0 * len(xs)), max(3.2, 1.3 + 0.7 * len(ys))))
    image = axes.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto",
                        cmap=colormaps["viridis"].with_extremes(bad="0.9"))
    low, high = image.norm.vmin, image.norm.vmax
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            dark = high > low and (value - low) / (high - low) < 0.5
            axes.text(j, i, f"{value:.3g}\nn={counts[i, j]}", ha="center", va="center", fontsize="small",
                      color="white" if dark else "black")
        else:
            axes.text(j, i, "no run\ncompleted", ha="center", va="center", fontsize="x-small", color="0.3")
    axes.set_xticks(range(len(xs)), [_format(v) for v in xs])
    axes.set_yticks(range(len(ys)), [_format(v) for v in ys])
    axes.set(xlabel=axis_label(x), ylabel=axis_label(y), title=_title(table.experiment, f"mean {metric} of grid points"))
    axes.title.set_fontsize("medium")
    figure.colorbar(image, ax=axes, label=axis_label(metric))
    name = f"{_slug(metric)}_heatmap_{_slug(y)}_vs_{_slug(x)}.png"
    return _save(figure, out if out is not None else _report_dir(table.experiment) / name)


def plot_search_scatter(experiment: Experiment, metric: str, x: str, y: str, out: str | Path | None = None,
                        db: DB = None, version: int | None = None) -> Path | None:
    """The sampled runs of the searches over ``x`` and ``y`` as points at their (x, y), coloured
    by ``metric``; log axes as the module docs say. None when no search sampled both."""
    from matplotlib import colormaps

    table, layout = _table_and_layout(experiment, db, version)
    table.check_columns([metric, x, y], "`metric`, `x` and `y`")
    frame = table.completed()
    paths = (_path_of(table, x), _path_of(table, y))
    trials = [t for t in layout.trials(SEARCH) if all(p in layout.swept[t] for p in paths)]
    frame = frame[frame["trial"].isin(trials)].dropna(subset=[metric])
    if frame.empty:
        return None
    figure, axes = _figure((5.6, 4.4))
    points = axes.scatter(frame[x], frame[y], c=frame[metric], cmap=colormaps["viridis"], s=46, edgecolors="black",
                          linewidths=0.5)
    for axis, column, path in (("x", x, paths[0]), ("y", y, paths[1])):
        if wants_log_axis(frame[column], path, layout):
            getattr(axes, f"set_{axis}scale")("log")
    groups = ", ".join(dict.fromkeys(frame["group"]))
    axes.set(xlabel=axis_label(x), ylabel=axis_label(y),
             title=_title(table.experiment, f"search {groups}: {len(frame)} sampled runs"))
    axes.title.set_fontsize("medium")
    axes.grid(alpha=0.3)
    figure.colorbar(points, ax=axes, label=axis_label(metric))
    name = f"{_slug(metric)}_search_{_slug(y)}_vs_{_slug(x)}.png"
    return _save(figure, out if out is not None else _report_dir(table.experiment) / name)

