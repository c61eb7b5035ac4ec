"""Bounded intervals: the bootstrap interval of a mean against hand values and scipy, and the
range each metric name implies."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.intervals import (bootstrap_difference_interval, bootstrap_mean_interval, mean_bands, metric_range)


def test_metric_ranges_from_names() -> None:
    for name in ("val_acc", "best_val_acc", "final_val_acc/label_3", "test_acc_at_best_val", "perfect_frac"):
        assert metric_range(name) == (0.0, 1.0), name
    for name in ("train_loss", "final_spikes_per_sample", "epoch_time_s", "best_epoch", "n_params", "lr",
                 "convergence_95"):
        assert metric_range(name) == (0.0, math.inf), name
    assert metric_range("final_v_mean") == (-math.inf, math.inf)


def test_two_values_zero_and_one() -> None:
    # resampled means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 2.5% and
    # 97.5% quantiles are 0 and 1
    assert bootstrap_mean_interval([0.0, 1.0]) == (0.0, 1.0)
    assert bootstrap_mean_interval([0.3, 0.3, 0.3]) == (pytest.approx(0.3), pytest.approx(0.3))
    assert all(math.isnan(v) for v in bootstrap_mean_interval([0.5]))
    assert all(math.isnan(v) for v in bootstrap_mean_interval([0.5, math.nan]))


def test_agrees_with_scipy_percentile_bootstrap() -> None:
    values = np.random.default_rng(7).gamma(2.0, 1.5, size=25)
    lo, hi = bootstrap_mean_interval(values, n_boot=20000)
    ref = stats.bootstrap((values,), np.mean, method="percentile", n_resamples=20000, random_state=1)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.03 * width)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.03 * width)


def test_never_leaves_the_range_where_a_t_interval_does() -> None:
    values = np.array([0.0, 0.01, 0.99, 1.0])
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert values.mean() + half > 1 and values.mean() - half < 0  # the Student-t interval leaves [0, 1]
    lo, hi = bootstrap_mean_interval(values, bounds=(0.0, 1.0))
    assert 0.0 <= lo < values.mean() < hi <= 1.0


def test_difference_interval() -> None:
    a, b = np.array([0.80, 0.85, 0.90]), np.array([0.60, 0.70, 0.74])
    lo, hi = bootstrap_difference_interval(a, b)
    # the resampled difference lies between min(a) - max(b) and max(a) - min(b)
    assert 0.80 - 0.74 <= lo < 0.17 < hi <= 0.90 - 0.60
    assert bootstrap_difference_interval([1.0, 1.0], [0.0, 0.0]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_difference_interval([1.0], [0.0, 1.0]))


def test_mean_bands_only_from_three_values() -> None:
    import pandas as pd

    frame = pd.DataFrame({"g": ["a", "a", "b", "b", "b"], "val_acc": [0.0, 1.0, 0.2, 0.4, 0.9]})
    bands = mean_bands(frame, ["g"], "val_acc")
    assert bands["g"].tolist() == ["a", "b"] and bands["n"].tolist() == [2, 3]
    assert bands["mean"].tolist() == pytest.approx([0.5, 0.5])
    assert math.isnan(bands.loc[0, "lo"]) and math.isnan(bands.loc[0, "hi"])  # n = 2: no interval
    assert 0.2 <= bands.loc[1, "lo"] < 0.5 < bands.loc[1, "hi"] <= 0.9
