"""Comparing two trials: the tests agree with scipy.stats, the effect sizes with hand values."""
from __future__ import annotations

import math

import pytest
from scipy import stats

import analysis
from analysis.compare import cliffs_delta, cohens_d, compare_samples, compare_trials, describe_comparison

A, B = [0.80, 0.85, 0.90], [0.60, 0.70, 0.74]  # the COMPLETED final_val_acc of demo's two trials


def test_effect_sizes_by_hand() -> None:
    # s_a^2 = 0.0025, s_b^2 = 0.0052; pooled = sqrt((2 * 0.0025 + 2 * 0.0052) / 4) = sqrt(0.00385)
    assert cohens_d(A, B) == pytest.approx(0.17 / math.sqrt(0.00385))  # 2.7398
    assert cohens_d(A, B) == pytest.approx(2.739798, rel=1e-6)
    assert cliffs_delta(A, B) == 1.0 and cliffs_delta(B, A) == -1.0
    # a = 1, 2, 3 against b = 2, 3, 4: signs -1 -1 -1 / 0 -1 -1 / +1 0 -1, sum -5 of 9 pairs
    assert cliffs_delta([1, 2, 3], [2, 3, 4]) == pytest.approx(-5 / 9)
    assert math.isnan(cohens_d([1.0], [2.0, 3.0]))


def test_tests_agree_with_scipy() -> None:
    result = compare_samples(A, B)
    welch = stats.ttest_ind(A, B, equal_var=False)
    mwu = stats.mannwhitneyu(A, B, alternative="two-sided")
    assert result["welch_t"] == pytest.approx(welch.statistic) and result["welch_p"] == pytest.approx(welch.pvalue)
    # t by hand: 0.17 / sqrt(0.0025 / 3 + 0.0052 / 3)
    assert result["welch_t"] == pytest.approx(0.17 / math.sqrt(0.0077 / 3))
    assert result["mannwhitney_u"] == mwu.statistic == 9.0 and result["mannwhitney_p"] == pytest.approx(mwu.pvalue)
    assert result["mannwhitney_p"] == pytest.approx(0.1)  # exact: 2 of the 20 orderings are as extreme
    # Cliff's delta is 2U / (n_a n_b) - 1 with ties counted half, here with ties
    a, b = [1.0, 2.0, 3.0, 3.0], [2.0, 3.0, 4.0]
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    assert compare_samples(a, b)["cliffs_delta"] == pytest.approx(2 * u / 12 - 1)
    assert result["diff"] == pytest.approx(0.17) and result["diff_lo"] < 0.17 < result["diff_hi"]


def test_compare_trials_reads_completed_runs(known_db: str) -> None:
    result = compare_trials("demo", "lr=0.01", "lr=0.1", metric="final_val_acc", db=known_db)
    assert (result["n_a"], result["n_b"]) == (3, 3)  # the FAILED repeat of lr=0.01 does not count
    assert result["mean_a"] == pytest.approx(0.85) and result["mean_b"] == pytest.approx(0.68)
    assert result["cohens_d"] == pytest.approx(cohens_d(A, B))
    line = describe_comparison(result)
    assert "Welch t = 3.36" in line and "Cliff's delta = 1" in line and "(n=3)" in line
    one = describe_comparison({**result, **compare_samples([0.9], [0.8, 0.7])})
    assert "no interval (needs 2 runs a side)" in one and "Welch t = n/a (p = n/a)" in one
    with pytest.raises(ValueError, match=r"trial must be one of 'lr=0.01', 'lr=0.1', got 'lr=1'"):
        compare_trials("demo", "lr=0.01", "lr=1", metric="final_val_acc", db=known_db)
    with pytest.raises(ValueError, match="did you mean"):
        analysis.compare.compare_trials("demo", "lr=0.01", "lr=0.1", metric="final_val_ac", db=known_db)
