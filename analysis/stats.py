"""Statistics over repeats: mean, spread and Student-t 95% confidence intervals per group of runs.

Layout of every aggregate frame here: one row per group, the grouping columns first (as plain
columns, not an index), then ``<metric>_<stat>`` for each metric in the order asked for, e.g.
``trial, final_val_acc_mean, final_val_acc_std, final_val_acc_sem, final_val_acc_ci95,
final_val_acc_n``. Only COMPLETED runs contribute values, and NaN values are skipped: ``n``
counts the values used. A group whose runs have not completed yet keeps its row, with ``n`` 0.

- ``std``: sample standard deviation (ddof=1), NaN for n < 2
- ``sem``: std / sqrt(n)
- ``ci95``: half-width of the 95% CI of the mean, ``t.ppf(0.975, n - 1) * sem``, NaN for n < 2

The SOP ratio against ALIF (the BRF paper's energy comparison): in an experiment where a trial's
model has an ALIF layer (a param ``model.layers[<i>].kernel.type`` equal to ``ALIFKernel``),
``sop_ratio_vs_alif`` of a trial is the mean ``final_spikes_per_sample`` of its COMPLETED runs
divided by that mean over the COMPLETED runs of the ALIF trials (pooled when there are several;
the ALIF trial's own ratio is 1). :func:`summarize` by ``trial`` appends it as the last column
whenever ``final_spikes_per_sample`` is among its metrics; without an ALIF trial the column is
absent, and it is NaN where either mean is missing or the ALIF mean is 0.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.frames import COMPLETED, RunTable, as_list, read_run_table
from analysis.source import DB, Experiment, reading, resolve_experiment
from settings.metrics import TRAIN_ACC, VAL_ACC

STATS = ("mean", "std", "sem", "ci95", "n")
SWEEP_STATS = ("mean", "median", "std", "min", "max", "n")
CURVE_STATS = ("mean", "std", "sem", "ci95", "n")
ALIF_KERNEL = "ALIFKernel"
SOP_RATIO, SOP_METRIC = "sop_ratio_vs_alif", "final_spikes_per_sample"
_KERNEL_TYPE = re.compile(r"^(param\.)?model\.layers\[\d+\]\.kernel\.type$")


def ci95_halfwidth(std: np.ndarray | pd.Series, n: np.ndarray | pd.Series) -> np.ndarray:
    """Half-width of the Student-t 95% CI of a mean from ``n`` values: t(0.975, n-1) * std/sqrt(n);
    NaN where n < 2."""
    from scipy.special import stdtrit  # the t quantile itself (scipy.stats' t.ppf calls it), a third of the import

    std, n = np.asarray(std, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        quantile = np.where(n >= 2, stdtrit(np.maximum(n - 1, 1), 0.975), np.nan)
        return quantile * std / np.sqrt(n)


def group_stats(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str],
                stats: Sequence[str] = STATS) -> pd.DataFrame:
    """``<column>_<stat>`` of each column per group of ``by`` (groups in order of first
    appearance, NaN keys kept); stats from mean, median, std, min, max, sem, ci95, n."""
    by, columns = list(by), list(columns)
    if not columns:
        return frame[by].drop_duplicates().reset_index(drop=True)
    for column in columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            raise ValueError(f"metric {column!r} must be a numeric column, got dtype {frame[column].dtype}")
    raw = frame.groupby(by, sort=False, dropna=False)[columns].agg(["mean", "median", "std", "min", "max", "count"])
    out: dict[str, pd.Series | np.ndarray] = {}
    for column in columns:
        part = raw[column]
        n = part["count"].astype(int)
        derived = {"mean": part["mean"], "median": part["median"], "std": part["std"], "min": part["min"],
                   "max": part["max"], "n": n, "sem": part["std"] / np.sqrt(n.where(n > 0))}
        if "ci95" in stats:  # imports scipy
            derived["ci95"] = ci95_halfwidth(part["std"], n)
        for stat in stats:
            out[f"{column}_{stat}"] = derived[stat]
    return pd.DataFrame(out, index=raw.index).reset_index()


def _sorted_by_params(frame: pd.DataFrame, by: Sequence[str], table: RunTable) -> pd.DataFrame:
    """Runs in run order, stably sorted by the params among ``by`` where their values compare."""
    params = [column for column in by if column in table.param_columns.values()]
    if not params:
        return frame
    try:
        return frame.sort_values(params, kind="stable", na_position="last")
    except TypeError:  # a column mixing text and numbers
        return frame


def completed_values(table: RunTable, metrics: Sequence[str]) -> pd.DataFrame:
    """The runs frame with the metric columns of runs that are not COMPLETED set to NaN."""
    frame, metrics = table.runs.copy(), list(metrics)
    frame[metrics] = frame[metrics].where(frame["status"] == COMPLETED, axis=0)
    return frame


def summarize(experiment: Experiment, by: str | Sequence[str] = "trial", metrics: str | Sequence[str] | None = None,
              db: DB = None, version: int | None = None) -> pd.DataFrame:
    """Summary metrics aggregated over repeats: one row per group of ``by`` (``"trial"``,
    ``"group"``, or param columns such as ``"optimizer.lr"``), with ``<metric>_mean, _std, _sem,
    _ci95, _n`` for each metric (default: every summary key of the experiment except the
    per-label ones, ``final_val_acc/label_<k>``, which can be asked for); see the module docs. Groups are in trial order, sorted by the params among ``by``.
    By ``trial`` with ``final_spikes_per_sample`` among the metrics, an experiment with an ALIF
    trial also gets ``sop_ratio_vs_alif`` (the module docs)."""
    by = as_list(by)
    table = read_run_table(experiment, db, version)
    if metrics is None:
        metrics = [column for column in table.summary_columns if "/label_" not in column]
    metrics = as_list(metrics)
    table.check_columns(by, "`by`")
    table.check_columns(metrics, "`metrics`")
    frame = _sorted_by_params(completed_values(table, metrics), by, table)
    stats = group_stats(frame, by, metrics, STATS)
    ratio = sop_ratio_vs_alif(table.runs) if by == ["trial"] and SOP_METRIC in metrics else None
    if ratio is not None:
        stats[SOP_RATIO] = stats["trial"].map(ratio).astype(float)
    return stats


def alif_trials(runs: pd.DataFrame) -> list[str]:
    """The trials of a :func:`analysis.load_runs` frame whose model has an ALIF layer: a param
    column ``model.layers[<i>].kernel.type`` equal to ``ALIFKernel``, in order of first appearance."""
    columns = [column for column in runs.columns if _KERNEL_TYPE.match(column)]
    if not columns or runs.empty:
        return []
    alif = (runs[columns] == ALIF_KERNEL).any(axis=1)
    return list(dict.fromkeys(runs.loc[alif, "trial"]))


def sop_ratio_vs_alif(runs: pd.DataFrame, metric: str = SOP_METRIC) -> pd.Series | None:
    """Per trial (the index, in order of first appearance): the mean ``metric`` over its
    COMPLETED runs divided by the mean over the COMPLETED runs of the ALIF trials (see the module
    docs); None without an ALIF trial or without the ``metric`` column."""
    reference = alif_trials(runs)
    if not reference or metric not in runs.columns:
        return None
    done = runs[runs["status"] == COMPLETED]
    means = done.groupby("trial", sort=False)[metric].mean().reindex(list(dict.fromkeys(runs["trial"])))
    alif = done.loc[done["trial"].isin(reference), metric].mean()
    ratio = means / alif if np.isfinite(alif) and alif != 0 else means * np.nan
    return ratio.rename(SOP_RATIO)


def aggregate_sweep(experiment: Experiment, metric: str | Sequence[str] = "final_val_acc", db: DB = None,
                    version: int | None = None) -> pd.DataFrame:
    """One row per sweep point (trial, in trial order): ``trial, group``, the swept params, then
    ``<metric>_mean, _median, _std, _min, _max, _n`` over its COMPLETED repeats."""
    metrics = as_list(metric)
    table = read_run_table(experiment, db, version)
    table.check_columns(metrics, "`metric`")
    return group_stats(completed_values(table, metrics), ["trial", "group", *table.varying], metrics, SWEEP_STATS)


def curve_values(experiment: Experiment, metrics: str | Sequence[str] = (TRAIN_ACC, VAL_ACC),
                 by: str | Sequence[str] = "trial", db: DB = None, version: int | None = None) -> pd.DataFrame:
    """The per-epoch values of COMPLETED runs, one row per run, key and epoch: ``run_id, <by...>,
    key, epoch, value``, runs in trial order (sorted by the params among ``by``)."""
    by, keys = as_list(by), as_list(metrics)
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        table = read_run_table(record, store)
        table.check_columns(by, "`by`")
        rows = store.metrics(record.id, keys=keys)
    done = _sorted_by_params(table.completed(), by, table)
    values = pd.DataFrame(rows, columns=["run_id", "key", "epoch", "value"]).astype({"value": float})
    return done[list(dict.fromkeys(["run_id", *by]))].merge(values, on="run_id")


def learning_curves(experiment: Experiment, metrics: str | Sequence[str] = (TRAIN_ACC, VAL_ACC),
                    by: str | Sequence[str] = "trial", db: DB = None, version: int | None = None) -> pd.DataFrame:
    """Per-epoch metrics of COMPLETED runs aggregated over the runs of each group of ``by``:
    ``<by...>, key, epoch, mean, std, sem, ci95, n``, groups in trial order, then key and epoch."""
    by = as_list(by)
    values = curve_values(experiment, metrics, by, db, version)
    curves = group_stats(values, [*by, "key", "epoch"], ["value"], CURVE_STATS)
    curves = curves.rename(columns={f"value_{stat}": stat for stat in CURVE_STATS})
    order = curves.groupby(by, sort=False, dropna=False).ngroup()
    return curves.assign(_order=order).sort_values(["_order", "key", "epoch"], kind="stable").drop(
        columns="_order").reset_index(drop=True)
