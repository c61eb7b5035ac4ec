"""The capacity curve and alpha_c on a small hand-made capacity experiment.

``capacity`` v1: N = 100 and N = 200 afferents, loads alpha = 1, 2, 3, 4 (P = alpha N), four
COMPLETED repeats per point, of which ``PERFECT[N]`` reached 100% training accuracy (best 1.0,
final 1.0); the others end at the final accuracies in ``MISSED``. One extra FAILED run at N = 100,
alpha = 1 (best 0.2) must never count. ``other`` v1: a Digits experiment (no capacity sweep).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.capacity import _report_section, capacity_curve, estimate_alpha_c, plot_capacity_curve, wilson_interval
from analysis.source import reading, resolve_experiment
from experiment.store import ErrorInfo, NewRun, RunStatus, SQLStore

PERFECT = {100: [4, 3, 1, 0], 200: [4, 4, 2, 0]}  # perfect repeats at alpha = 1, 2, 3, 4
MISSED = [0.99, 0.97, 0.95, 0.93]  # final train acc of the non-perfect repeats, in repeat order


def _trial(store: SQLStore, experiment_id: int, name: str, config: dict, point: dict | None):
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    return store.upsert_trial(experiment_id, name, config, digest, sweep_point=point, group_name="loads")


def _run(store: SQLStore, trial, repeat: int, status: RunStatus, summary: dict) -> None:
    [run] = store.ensure_runs(trial.experiment_id, [NewRun(trial.id, trial.config_hash, repeat, repeat, "out")])
    attempt = store.claim_run(run.id, "testhost", 1)
    error = ErrorInfo("RuntimeError", "boom") if status is RunStatus.FAILED else None
    store.finish_run(run.id, attempt.id, status, summary=summary, error=error)


def final_accs(n_perfect: int) -> list[float]:
    return [1.0] * n_perfect + MISSED[: 4 - n_perfect]


@pytest.fixture(scope="module")
def capacity_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('capacity')) / 'capacity.db'}"
    with SQLStore.create(url) as store:
        exp = store.open_experiment("capacity", "hand-made capacity curve", 1, "configs/capacity", {}, {})
        for N, counts in PERFECT.items():
            for alpha, n_perfect in zip((1, 2, 3, 4), counts):
                config = {"data": {"type": "RandomDataset", "size": alpha * N, "input_size": N}, "epochs": 10}
                trial = _trial(store, exp.id, f"N{N}_P{alpha * N}", config, {"data.size": alpha * N})
                for repeat, acc in enumerate(final_accs(n_perfect)):
                    best = 1.0 if acc == 1.0 else acc + 0.005
                    _run(store, trial, repeat, RunStatus.COMPLETED, {"final_train_acc": acc, "best_train_acc": best})
                if N == 100 and alpha == 1:
                    _run(store, trial, 4, RunStatus.FAILED, {"final_train_acc": 0.2, "best_train_acc": 0.2})
        other = store.open_experiment("other", "not a capacity experiment", 1, "configs/other", {}, {})
        for lr in (0.1, 0.2):
            trial = _trial(store, other.id, f"lr{lr}", {"data": {"type": "Digits"}, "optimizer": {"lr": lr}},
                           {"optimizer.lr": lr})
            _run(store, trial, 0, RunStatus.COMPLETED, {"final_train_acc": 0.9, "best_train_acc": 0.95})
    return url


def test_wilson_interval_solves_the_score_equation():
    """The bounds are the two p with (k/n - p)^2 = z^2 p (1 - p) / n; 0/n and n/n touch 0 and 1."""
    z = 1.959963984540054
    for k, n in [(3, 4), (1, 5), (7, 10)]:
        lo, hi = wilson_interval(k, n)
        roots = np.roots([1 + z * z / n, -(2 * k / n + z * z / n), (k / n) ** 2])
        assert sorted(roots) == pytest.approx([float(lo), float(hi)], abs=1e-12)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert float(wilson_interval(3, 4)[0]) == pytest.approx(0.3006, abs=1e-4)


def test_capacity_curve_per_n_and_alpha(capacity_db: str):
    curve = capacity_curve("capacity", db=capacity_db)
    assert list(curve[["N", "alpha"]].itertuples(index=False, name=None)) == [
        (N, float(a)) for N in (100, 200) for a in (1, 2, 3, 4)]
    assert curve["P"].tolist() == [100, 200, 300, 400, 200, 400, 600, 800]
    assert curve["n"].tolist() == [4] * 8  # the FAILED run does not count
    assert curve["n_perfect"].tolist() == PERFECT[100] + PERFECT[200]
    assert curve["perfect_frac"].tolist() == [1.0, 0.75, 0.25, 0.0, 1.0, 1.0, 0.5, 0.0]
    lo, hi = wilson_interval(curve["n_perfect"].to_numpy(), curve["n"].to_numpy())
    assert np.allclose(curve["perfect_lo"], lo) and np.allclose(curve["perfect_hi"], hi)
    row = curve[(curve["N"] == 100) & (curve["alpha"] == 3)].iloc[0]
    accs = final_accs(1)  # 1.0, 0.99, 0.97, 0.95
    assert row["final_train_acc_mean"] == pytest.approx(np.mean(accs))
    assert row["final_train_acc_ci95"] == pytest.approx(3.182446305284263 * np.std(accs, ddof=1) / 2)
    perfect_row = curve[(curve["N"] == 200) & (curve["alpha"] == 1)].iloc[0]
    assert perfect_row["final_train_acc_mean"] == 1.0 and perfect_row["final_train_acc_ci95"] == 0.0


def test_alpha_c_by_interpolation(capacity_db: str):
    """N = 100: 0.75 at alpha 2, 0.25 at alpha 3 -> 2.5; N = 200: 0.5 at alpha 3, 0 at alpha 4 -> 3."""
    found = estimate_alpha_c("capacity", db=capacity_db).set_index("N")
    assert found.loc[100, "alpha_c"] == pytest.approx(2.5)
    assert found.loc[200, "alpha_c"] == pytest.approx(3.0)
    assert (found["method"] == "interpolate").all()
    for N in (100, 200):
        assert found.loc[N, "alpha_c_lo"] <= found.loc[N, "alpha_c"] <= found.loc[N, "alpha_c_hi"]
    curve = capacity_curve("capacity", db=capacity_db)
    lo, hi = curve[curve["N"] == 100]["perfect_lo"].to_numpy(), curve[curve["N"] == 100]["perfect_hi"].to_numpy()
    # the upper Wilson bound of 1/4 (0.806) crosses 1/2 between alpha 3 and 4 (0 of 4: 0.490)
    assert hi[2] > 0.5 > hi[3]
    assert found.loc[100, "alpha_c_hi"] == pytest.approx(3 + (hi[2] - 0.5) / (hi[2] - hi[3]))
    # the lower bound of 4/4 (0.510) is the only one above 1/2: it crosses between alpha 1 and 2
    assert lo[0] > 0.5 > lo[1]
    assert found.loc[100, "alpha_c_lo"] == pytest.approx(1 + (lo[0] - 0.5) / (lo[0] - lo[1]))


def test_alpha_c_by_logistic_fit():
    """Symmetric data around 2.5 put the maximum-likelihood alpha_c at 2.5; the profile
    interval holds it; no crossing inside the loads gives NaN for interpolation."""
    curve = pd.DataFrame({"N": 100, "alpha": [1.0, 2.0, 3.0, 4.0], "n": 8, "n_perfect": [8, 6, 2, 0]})
    curve["perfect_frac"] = curve["n_perfect"] / curve["n"]
    curve["perfect_lo"], curve["perfect_hi"] = wilson_interval(curve["n_perfect"], curve["n"])
    fit = estimate_alpha_c(curve, method="logistic").iloc[0]
    assert fit["alpha_c"] == pytest.approx(2.5, abs=1e-3)
    assert 1.5 < fit["alpha_c_lo"] < 2.5 < fit["alpha_c_hi"] < 3.5
    assert fit["width"] > 0
    always = curve.assign(n_perfect=8, perfect_frac=1.0, perfect_lo=0.7, perfect_hi=1.0)
    assert math.isnan(estimate_alpha_c(always).iloc[0]["alpha_c"])
    with pytest.raises(ValueError, match="method"):
        estimate_alpha_c(curve, method="spline")


def test_logistic_fit_of_separated_loads_falls_in_the_gap(capacity_db: str):
    """N = 200 has no perfect run at alpha 4 and every run perfect up to alpha 2: the fit stays finite."""
    fit = estimate_alpha_c("capacity", method="logistic", db=capacity_db).set_index("N")
    assert 2.0 < fit.loc[200, "alpha_c"] < 4.0
    assert fit.loc[100, "alpha_c_lo"] < fit.loc[100, "alpha_c"] < fit.loc[100, "alpha_c_hi"]


def test_capacity_plot_and_report_section(capacity_db: str, tmp_path: Path):
    out = plot_capacity_curve("capacity", out=tmp_path / "cap.png", db=capacity_db)
    assert out == tmp_path / "cap.png"
    assert out.stat().st_size > 5000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with reading(capacity_db) as store:
        [(_, path, caption)] = _report_section(resolve_experiment(store, "capacity"), tmp_path, store)
        assert path == tmp_path / "capacity_curve.png" and path.is_file()
        assert "N = 100: 2.50" in caption and "N = 200: 3.00" in caption
        assert _report_section(resolve_experiment(store, "other"), tmp_path, store) == []


def test_capacity_curve_names_missing_columns(capacity_db: str):
    with pytest.raises(ValueError, match="data.input_size"):
        capacity_curve("other", db=capacity_db)


def test_the_accuracy_band_stays_in_0_1(capacity_db: str):
    from matplotlib.collections import PolyCollection

    from analysis.capacity import capacity_figure

    curve = capacity_curve("capacity", db=capacity_db)
    # N = 100, alpha = 2: final accuracies 1, 1, 1, 0.99; a Student-t CI reaches above 1
    row = curve[(curve["N"] == 100) & (curve["alpha"] == 2)].iloc[0]
    assert row["final_train_acc_mean"] + row["final_train_acc_ci95"] > 1.0
    _, figure = capacity_figure("capacity", db=capacity_db)
    right = figure.axes[1]
    bands = [path.vertices[:, 1] for c in right.collections if isinstance(c, PolyCollection) for path in c.get_paths()]
    assert bands and all(0.0 <= v[np.isfinite(v)].min() and v[np.isfinite(v)].max() <= 1.0 for v in bands)
    assert "bootstrap CI" in right.get_title()
