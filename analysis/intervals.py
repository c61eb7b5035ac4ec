"""Intervals that stay inside a metric's range, and the rule for drawing them.

Plots and tables of this package never draw a Student-t interval around a mean of repeats: with
2 or 3 repeats of a bounded metric its half-width (12.7 sd / sqrt(2) for n = 2) routinely leaves
the range, showing accuracies above 1 or negative losses. Instead:

- a mean over ``n >= MIN_BAND_N`` (3) values gets the **95% bootstrap percentile interval of the
  mean** (:func:`bootstrap_mean_interval`): the 2.5% and 97.5% quantiles of the means of
  ``N_BOOT`` resamples with replacement, seeded, so a figure is reproducible. Every resampled mean
  lies between the smallest and the largest value, so the interval never leaves the data's range;
  it is also clipped to :func:`metric_range` of the metric.
- fewer values get no interval: the plots show the single runs as points (``BAND_RULE``).

:func:`metric_range` tells the range from the metric's name: accuracies and fractions in
[0, 1]; losses, spike counts, times, epochs, parameter counts in [0, inf); anything else unbounded.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np
import pandas as pd

MIN_BAND_N = 3
N_BOOT = 4000
CONFIDENCE = 0.95
SEED = 0
BAND_NAME = "95% bootstrap CI of the mean"
BAND_RULE = (f"lines: means over repeats; a shaded band only where n >= {MIN_BAND_N}: the {BAND_NAME}; "
             f"dots: the single runs where n < {MIN_BAND_N}")

_UNIT_INTERVAL = re.compile(r"(^|_)(acc|accuracy|frac|fraction|perfect)(_|$|/)")
_NON_NEGATIVE = re.compile(r"loss|spikes|count|time|epoch|n_params|convergence|sop|duration|energy|lr$")


def metric_range(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: (0, 1) for accuracies and fractions (``val_acc``,
    ``final_val_acc/label_3``, ``perfect_frac``), (0, inf) for losses, spike counts, times, epochs,
    parameter counts and learning rates, (-inf, inf) otherwise."""
    name = metric.lower()
    if _UNIT_INTERVAL.search(name):
        return 0.0, 1.0
    if _NON_NEGATIVE.search(name):
        return 0.0, math.inf
    return -math.inf, math.inf


def lower_is_better(metric: str) -> bool:
    """Losses, spike counts, times, epochs and convergence epochs rank lowest first; accuracies
    highest first."""
    return re.search(r"loss|spikes|time|epoch|convergence", metric) is not None


def bootstrap_mean_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE,
                            n_boot: int = N_BOOT, seed: int = SEED,
                            bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float]:
    """The bootstrap percentile interval of the mean of the finite ``values``: the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of ``n_boot`` resampled means,
    clipped to ``bounds``; (NaN, NaN) for fewer than two values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))


def bootstrap_difference_interval(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                                  confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                                  seed: int = SEED) -> tuple[float, float]:
    """The bootstrap percentile interval of ``mean(a) - mean(b)``, each sample resampled on its
    own; (NaN, NaN) unless both have two or more finite values."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    diff = (a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
            - b[rng.integers(0, b.size, size=(n_boot, b.size))].mean(axis=1))
    lo, hi = np.quantile(diff, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def mean_bands(frame: pd.DataFrame, by: Sequence[str], column: str, metric: str | None = None) -> pd.DataFrame:
    """Per group of ``by`` (in order of first appearance): ``mean, n, lo, hi`` of the finite
    values of ``column``, where ``lo, hi`` is the bootstrap interval of the mean for groups of
    ``n >= MIN_BAND_N`` values (NaN otherwise), clipped to ``metric_range(metric or column)``."""
    bounds = metric_range(metric or column)
    rows = []
    for key, part in frame.groupby(list(by), sort=False, dropna=False):
        values = part[column].to_numpy(float)
        values = values[np.isfinite(values)]
        lo, hi = bootstrap_mean_interval(values, bounds=bounds) if values.size >= MIN_BAND_N else (math.nan,
                                                                                                   math.nan)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "mean": values.mean() if values.size else math.nan,
                     "n": int(values.size), "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=[*by, "mean", "n", "lo", "hi"])
