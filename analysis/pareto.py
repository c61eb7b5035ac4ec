"""The outcome of a search: its points and their Pareto front (the best point for one objective).

A point is one trial of a search (``<entry>-<k>``); its objective values are the summary metrics
averaged over its COMPLETED runs. A point is on the front when no other point is at least as good
in every objective and better in one (equal points keep each other). Points left out: those
without a COMPLETED run, those missing an objective value (NaN), and those the median pruner
stopped (a run with ``pruned_at_epoch`` in its summary): their training was cut short, so their
values are not comparable. ``show`` prints the fronts, ``show --json`` returns them, and the
report lists them in a table (``REPORT_TABLES``) and draws them over the first two objectives
(``REPORT_SECTIONS``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.frames import COMPLETED, RunTable, read_run_table
from analysis.report import REPORT_SECTIONS, REPORT_TABLES
from analysis.source import DB, Experiment, reading, resolve_experiment
from analysis.stats import completed_values, group_stats
from settings.sweep import PRUNED_AT_EPOCH, search_objectives

PRUNED = "pruned"
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SearchFront:
    """One search of an experiment: its objectives (``{metric, direction}``), its sampled param
    paths, every point (``trial``, the params, ``<metric>_mean`` and ``<metric>_n`` per objective,
    ``pruned``) and the front (the same columns, best first)."""

    name: str
    objectives: list[dict]
    params: list[str]
    points: pd.DataFrame
    front: pd.DataFrame


def non_dominated(values: pd.DataFrame, maximize: Sequence[bool]) -> pd.Series:
    """A boolean mask of the rows no other row dominates (at least as good everywhere, better once).

    ``values``: one column per objective, finite numbers; ``maximize``: per column, True where
    higher is better. Values within a relative :data:`TIE_TOLERANCE` count as equal (a mean over
    repeats carries round-off: (0.9 + 0.8) / 2 is not (0.85 + 0.85) / 2 in floating point), and
    equal rows do not dominate each other."""
    signs = np.array([1.0 if up else -1.0 for up in maximize])
    scores = values.to_numpy(dtype=float) * signs
    keep = []
    for row in scores:
        tolerance = TIE_TOLERANCE * np.abs(row)
        better, worse = scores > row + tolerance, scores < row - tolerance
        dominated = ~worse.any(axis=1) & better.any(axis=1)
        keep.append(not dominated.any())
    return pd.Series(keep, index=values.index, dtype=bool)


def _maximize(objectives: Sequence[dict]) -> list[bool]:
    return [o.get("direction", "maximize") == "maximize" for o in objectives]


def front_of(points: pd.DataFrame, objectives: Sequence[dict]) -> pd.DataFrame:
    """The non-dominated rows of ``points`` (columns ``<metric>_mean``; rows with a NaN value or
    ``pruned`` left out), sorted best first by the first objective, then the next, then trial."""
    columns = [f"{o['metric']}_mean" for o in objectives]
    usable = points.dropna(subset=columns)
    if PRUNED in usable.columns:
        usable = usable[~usable[PRUNED].astype(bool)]
    if usable.empty:
        return usable.reset_index(drop=True)
    front = usable[non_dominated(usable[columns], _maximize(objectives))]
    order = columns + (["trial"] if "trial" in front.columns else [])
    ascending = [not up for up in _maximize(objectives)] + [True] * (len(order) - len(columns))
    return front.sort_values(order, ascending=ascending, kind="stable").reset_index(drop=True)


def search_points(table: RunTable, group: str, objectives: Sequence[dict], params: Sequence[str] = ()) -> pd.DataFrame:
    """One row per point of search ``group`` with a COMPLETED run, in sampling order: ``trial``,
    the sampled ``params`` (by path), ``<metric>_mean`` and ``<metric>_n`` per objective, ``pruned``.
    ValueError when an objective is not a summary metric of the experiment."""
    metrics = [o["metric"] for o in objectives]
    table.check_columns(metrics, "objective metrics")
    runs = completed_values(table, metrics)
    runs = runs[(runs["group"] == group) & (runs["status"] == COMPLETED)]
    stats = group_stats(runs, ["trial"], metrics, ("mean", "n"))
    columns = {path: table.param_columns[path] for path in params if path in table.param_columns}
    first = runs.drop_duplicates("trial").set_index("trial")
    for path, column in columns.items():
        stats[path] = stats["trial"].map(first[column])
    if PRUNED_AT_EPOCH in runs.columns:
        stopped = runs.groupby("trial", sort=False)[PRUNED_AT_EPOCH].apply(lambda v: bool(v.notna().any()))
        stats[PRUNED] = stats["trial"].map(stopped).astype(bool)
    else:
        stats[PRUNED] = False
    shown = ["trial", *columns, *(f"{m}_{s}" for m in metrics for s in ("mean", "n")), PRUNED]
    return stats[shown]


def pareto_front(experiment: Experiment, group: str, objectives: Sequence[dict], db: DB = None,
                 version: int | None = None, params: Sequence[str] = ()) -> pd.DataFrame:
    """The points of search ``group`` that are Pareto-optimal for ``objectives`` (each
    ``{metric, direction}``), best first by the first objective; with one objective, the best
    point(s). Columns: ``trial``, the sampled ``params``, ``<metric>_mean`` and ``<metric>_n``."""
    table = read_run_table(experiment, db, version)
    return front_of(search_points(table, group, objectives, params), objectives).drop(columns=PRUNED)


def search_fronts(experiment: Experiment, db: DB = None, version: int | None = None) -> dict[str, SearchFront]:
    """Every model-based or random search of the experiment's trials.yaml -> its points and front;
    a search whose objective metrics no run has recorded yet is left out."""
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        table = read_run_table(record, store)
    fronts = {}
    for trial in record.files.get("trials", []):
        search = trial.get("search")
        if not search:
            continue
        objectives = search_objectives(search)
        params = list(search.get("params", {}))
        try:
            points = search_points(table, trial["name"], objectives, params)
        except ValueError:  # an objective metric no run has produced yet
            continue
        front = front_of(points, objectives).drop(columns=PRUNED)
        fronts[trial["name"]] = SearchFront(trial["name"], objectives, params, points, front)
    return fronts


def describe(search: SearchFront) -> str:
    """``maximize best_val_acc, minimize final_spikes_per_sample: Pareto front (2 of 5 completed points,
    1 pruned)``."""
    goal = ", ".join(f"{o.get('direction', 'maximize')} {o['metric']}" for o in search.objectives)
    what = "best point" if len(search.objectives) == 1 else "Pareto front"
    pruned = int(search.points[PRUNED].sum())
    return (f"{goal}: {what} ({len(search.front)} of {len(search.points)} completed points"
            + (f", {pruned} pruned" if pruned else "") + ")")


def front_tables(record: Any, store: Any) -> list[tuple[str, pd.DataFrame, str]]:
    """The report's tables (``REPORT_TABLES``): one per search, its front with the sampled params."""
    return [(f"search {name}: {'best point' if len(search.objectives) == 1 else 'Pareto front'}", search.front,
             describe(search) + "; values are means over a point's COMPLETED repeats, _n their count; pruned "
                                "points and points missing a value are left out")
            for name, search in search_fronts(record, store).items()]


def plot_front(search: SearchFront, out: str | Path) -> Path | None:
    """A scatter of every point over the first two objectives, the front joined by a line and
    pruned points hollow; None with fewer than two objectives or no usable point."""
    from analysis.plots import _figure, _save

    if len(search.objectives) < 2:
        return None
    x, y = (f"{o['metric']}_mean" for o in search.objectives[:2])
    points = search.points.dropna(subset=[x, y])
    if points.empty:
        return None
    figure, axes = _figure()
    kept, pruned = points[~points[PRUNED]], points[points[PRUNED]]
    axes.scatter(kept[x], kept[y], color="0.6", label="points")
    if len(pruned):
        axes.scatter(pruned[x], pruned[y], facecolors="none", edgecolors="0.6", label="pruned")
    front = search.front.sort_values(x)
    axes.plot(front[x], front[y], "o-", color="C3", label="Pareto front")
    names = [o["metric"] for o in search.objectives[:2]]
    axes.set(xlabel=f"{names[0]} (mean over repeats)", ylabel=f"{names[1]} (mean over repeats)",
             title=f"search {search.name}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, out)


def _report_section(record: Any, folder: Path, store: Any) -> list[tuple[str, Path, str]]:
    figures = []
    for name, search in search_fronts(record, store).items():
        path = plot_front(search, folder / f"pareto_{name}.png")
        if path is not None:
            figures.append((f"search {name}: Pareto front", path, describe(search) + "; each point is the mean over "
                                                                  "its COMPLETED repeats"))
    return figures


REPORT_SECTIONS["pareto_fronts"] = _report_section
REPORT_TABLES["pareto_fronts"] = front_tables
