"""Comparing two trials: is one better than the other, by how much, and how sure can we be?

:func:`compare_samples` takes two samples of a metric (one value per COMPLETED repeat) and gives

- ``welch_t, welch_p``: Welch's t-test (unequal variances), two-sided;
- ``mannwhitney_u, mannwhitney_p``: the Mann-Whitney U test of ``a`` against ``b``, two-sided
  (exact for small samples without ties, as scipy chooses);
- ``cohens_d``: ``(mean_a - mean_b) / s_pooled``, ``s_pooled = sqrt(((n_a-1) s_a^2 + (n_b-1) s_b^2)
  / (n_a + n_b - 2))``, sample standard deviations;
- ``cliffs_delta``: ``(#{a_i > b_j} - #{a_i < b_j}) / (n_a n_b)``, in [-1, 1];
- ``diff, diff_lo, diff_hi``: ``mean_a - mean_b`` and its 95% bootstrap percentile interval
  (each sample resampled on its own, analysis.intervals).

A statistic that needs more values than there are is NaN (the t-test and d need two per side).
:func:`compare_trials` reads the two samples from the database.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from analysis.frames import read_run_table
from analysis.intervals import bootstrap_difference_interval
from analysis.source import DB, Experiment


def cohens_d(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cohen's d with the pooled sample standard deviation; NaN unless each side has two values
    (inf-signed when both samples are constant and their means differ)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        return math.nan
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    difference = float(a.mean() - b.mean())
    if pooled == 0:
        return math.nan if difference == 0 else math.copysign(math.inf, difference)
    return difference / pooled


def cliffs_delta(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cliff's delta: the probability that a value of ``a`` exceeds one of ``b`` minus the reverse."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return math.nan
    signs = np.sign(a[:, None] - b[None, :])
    return float(signs.sum() / signs.size)


def compare_samples(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> dict[str, float]:
    """The tests and effect sizes of the module docs for the finite values of ``a`` and ``b``."""
    from scipy import stats

    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out: dict[str, float] = {"n_a": a.size, "n_b": b.size,
                             "mean_a": float(a.mean()) if a.size else math.nan,
                             "mean_b": float(b.mean()) if b.size else math.nan}
    out["diff"] = out["mean_a"] - out["mean_b"]
    out["diff_lo"], out["diff_hi"] = bootstrap_difference_interval(a, b)
    if a.size >= 2 and b.size >= 2:
        welch = stats.ttest_ind(a, b, equal_var=False)
        out["welch_t"], out["welch_p"] = float(welch.statistic), float(welch.pvalue)
    else:
        out["welch_t"] = out["welch_p"] = math.nan
    if a.size and b.size:
        mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
        out["mannwhitney_u"], out["mannwhitney_p"] = float(mwu.statistic), float(mwu.pvalue)
    else:
        out["mannwhitney_u"] = out["mannwhitney_p"] = math.nan
    out["cohens_d"] = cohens_d(a, b)
    out["cliffs_delta"] = cliffs_delta(a, b)
    return out


def compare_trials(experiment: Experiment, a: str, b: str, metric: str = "best_val_acc", db: DB = None,
                   version: int | None = None) -> dict[str, Any]:
    """:func:`compare_samples` of ``metric`` over the COMPLETED runs of trials ``a`` and ``b``,
    with ``metric``, ``a`` and ``b`` in the result. ValueError for an unknown trial or metric."""
    table = read_run_table(experiment, db, version)
    table.check_columns([metric], "`metric`")
    trials = list(dict.fromkeys(table.runs["trial"]))
    for name in (a, b):
        if name not in trials:
            raise ValueError(f"trial must be one of {', '.join(map(repr, trials))}, got {name!r}")
    done = table.completed()
    sample = {name: done.loc[done["trial"] == name, metric].to_numpy(float) for name in (a, b)}
    return {"metric": metric, "a": a, "b": b, **compare_samples(sample[a], sample[b])}


def describe_comparison(result: dict[str, Any]) -> str:
    """One line for a notebook or a report: means, difference with its interval, p values and
    effect sizes of a :func:`compare_trials` result (what needs more runs says so)."""
    def number(key: str, spec: str = ".3g") -> str:
        return "n/a" if math.isnan(result[key]) else format(result[key], spec)

    interval = ("no interval (needs 2 runs a side)" if math.isnan(result["diff_lo"]) else
                f"95% bootstrap CI [{result['diff_lo']:+.4g}, {result['diff_hi']:+.4g}]")
    return (f"{result['metric']}: {result['a']} {result['mean_a']:.4g} (n={result['n_a']}) vs {result['b']} "
            f"{result['mean_b']:.4g} (n={result['n_b']}); difference {result['diff']:+.4g}, {interval}; "
            f"Welch t = {number('welch_t')} (p = {number('welch_p')}), Mann-Whitney U = {number('mannwhitney_u')} "
            f"(p = {number('mannwhitney_p')}); Cohen's d = {number('cohens_d')}, "
            f"Cliff's delta = {number('cliffs_delta')}")
