"""Statistics over repeats against hand computations on the known database of conftest.py.

Student-t quantiles from a table: t(0.975, 1) = 12.706204736174698, t(0.975, 2) = 4.302652729911275,
t(0.975, 3) = 3.182446305284263, t(0.975, 5) = 2.570581835636314.
"""
from __future__ import annotations

import math

import pytest

import analysis

T1, T2, T3, T5 = 12.706204736174698, 4.302652729911275, 3.182446305284263, 2.570581835636314
STAT_COLUMNS = ["final_val_acc_mean", "final_val_acc_std", "final_val_acc_sem", "final_val_acc_ci95",
                "final_val_acc_n"]
TAU = "model.layers[0].kernel.tau_m"


def test_ci95_halfwidth() -> None:
    assert analysis.ci95_halfwidth([0.05], [3])[0] == pytest.approx(T2 * 0.05 / math.sqrt(3))
    assert analysis.ci95_halfwidth([2.0], [2])[0] == pytest.approx(T1 * 2.0 / math.sqrt(2))
    assert math.isnan(analysis.ci95_halfwidth([0.1], [1])[0]) and math.isnan(analysis.ci95_halfwidth([0.1], [0])[0])


def test_summarize_by_trial_matches_hand_computation(known_db: str) -> None:
    table = analysis.summarize("demo", metrics="final_val_acc", db=known_db)
    assert list(table.columns) == ["trial", *STAT_COLUMNS]
    assert table["trial"].tolist() == ["lr=0.01", "lr=0.1"]
    # lr=0.01: 0.80, 0.85, 0.90 (the FAILED repeat's 0.10 excluded). mean 0.85,
    # std = sqrt((0.05^2 + 0 + 0.05^2) / 2) = 0.05
    a = table.iloc[0]
    assert a["final_val_acc_n"] == 3
    assert a["final_val_acc_mean"] == pytest.approx(0.85)
    assert a["final_val_acc_std"] == pytest.approx(0.05)
    assert a["final_val_acc_sem"] == pytest.approx(0.05 / math.sqrt(3))
    assert a["final_val_acc_ci95"] == pytest.approx(T2 * 0.05 / math.sqrt(3))  # 0.124207
    # lr=0.1: 0.60, 0.70, 0.74. mean 0.68, deviations -0.08, 0.02, 0.06: std = sqrt(0.0104 / 2)
    b = table.iloc[1]
    std = math.sqrt((0.0064 + 0.0004 + 0.0036) / 2)
    assert b["final_val_acc_n"] == 3 and b["final_val_acc_mean"] == pytest.approx(0.68)
    assert b["final_val_acc_std"] == pytest.approx(std) and b["final_val_acc_std"] == pytest.approx(0.0721110)
    assert b["final_val_acc_sem"] == pytest.approx(std / math.sqrt(3))
    assert b["final_val_acc_ci95"] == pytest.approx(T2 * std / math.sqrt(3))


def test_summarize_defaults_to_every_summary_key(known_db: str) -> None:
    table = analysis.summarize("demo", db=known_db)
    metrics = ["best_val_acc", "epochs", "final_train_acc", "final_val_acc"]
    assert list(table.columns) == ["trial", *(f"{m}_{s}" for m in metrics for s in ("mean", "std", "sem", "ci95", "n"))]
    assert table["best_val_acc_mean"].tolist() == pytest.approx([0.87, 0.70])
    assert table["epochs_std"].tolist() == [0.0, 0.0] and table["final_train_acc_n"].tolist() == [3, 3]
    per_label = analysis.summarize("demo", metrics="final_val_acc/label_0", db=known_db)  # only when asked for
    assert per_label["final_val_acc/label_0_mean"].tolist() == pytest.approx([0.75, 0.58])


def test_summarize_by_a_swept_param_pools_its_trials(known_db: str) -> None:
    table = analysis.summarize("grid", by=TAU, metrics="final_val_acc", db=known_db)
    assert list(table.columns) == [TAU, *STAT_COLUMNS] and table[TAU].tolist() == [5.0, 10.0]
    # tau_m=5: 0.50, 0.54, 0.70, 0.74, 0.30, 0.20 (n=6), mean 2.98 / 6
    five = [0.50, 0.54, 0.70, 0.74, 0.30, 0.20]
    mean5 = 2.98 / 6
    std5 = math.sqrt(sum((v - mean5) ** 2 for v in five) / 5)
    row = table.iloc[0]
    assert (row["final_val_acc_n"], row["final_val_acc_mean"]) == (6, pytest.approx(mean5))
    assert row["final_val_acc_std"] == pytest.approx(std5)
    assert row["final_val_acc_ci95"] == pytest.approx(T5 * std5 / math.sqrt(6))
    # tau_m=10: 0.60, 0.62, 0.80, 0.86 (lr=1 FAILED both), mean 2.88 / 4 = 0.72
    row = table.iloc[1]
    std10 = math.sqrt((0.12 ** 2 + 0.10 ** 2 + 0.08 ** 2 + 0.14 ** 2) / 3)
    assert (row["final_val_acc_n"], row["final_val_acc_mean"]) == (4, pytest.approx(0.72))
    assert row["final_val_acc_ci95"] == pytest.approx(T3 * std10 / 2)


def test_summarize_by_two_params_keeps_points_without_completed_runs(known_db: str) -> None:
    table = analysis.summarize("grid", by=["optimizer.lr", TAU], metrics="final_val_acc", db=known_db)
    assert list(zip(table["optimizer.lr"], table[TAU])) == [
        (1e-4, 5.0), (1e-4, 10.0), (1e-2, 5.0), (1e-2, 10.0), (1.0, 5.0), (1.0, 10.0)]
    assert table["final_val_acc_n"].tolist() == [2, 2, 2, 2, 2, 0]
    assert table["final_val_acc_mean"].iloc[:5].tolist() == pytest.approx([0.52, 0.61, 0.72, 0.83, 0.25])
    assert math.isnan(table["final_val_acc_mean"].iloc[5])
    # n = 2: std = |a - b| / sqrt(2), sem = |a - b| / 2
    assert table["final_val_acc_ci95"].iloc[0] == pytest.approx(T1 * 0.04 / 2)


def test_a_single_repeat_has_no_spread(known_db: str) -> None:
    row = analysis.summarize("scratch", metrics="final_val_acc", db=known_db, version=1).iloc[0]
    assert row["final_val_acc_mean"] == 0.5 and row["final_val_acc_n"] == 1
    assert math.isnan(row["final_val_acc_std"]) and math.isnan(row["final_val_acc_ci95"])


def test_summarize_names_unknown_columns(known_db: str) -> None:
    with pytest.raises(ValueError, match="did you mean 'optimizer.lr'.*swept params: optimizer.lr"):
        analysis.summarize("demo", by="optimiser.lr", db=known_db)
    with pytest.raises(ValueError, match="`metrics` must name columns"):
        analysis.summarize("demo", metrics="val_acc", db=known_db)
    with pytest.raises(ValueError, match="must be a numeric column"):
        analysis.summarize("demo", metrics="host", db=known_db)


def test_aggregate_sweep_has_one_row_per_point(known_db: str) -> None:
    demo = analysis.aggregate_sweep("demo", db=known_db)
    assert list(demo.columns) == ["trial", "group", "optimizer.lr", *(
        f"final_val_acc_{s}" for s in ("mean", "median", "std", "min", "max", "n"))]
    a, b = demo.iloc[0], demo.iloc[1]
    assert (a["trial"], a["group"], a["optimizer.lr"]) == ("lr=0.01", "lr_sweep", 0.01)
    assert [a[f"final_val_acc_{s}"] for s in ("mean", "median", "std", "min", "max", "n")] == pytest.approx(
        [0.85, 0.85, 0.05, 0.80, 0.90, 3])
    assert [b[f"final_val_acc_{s}"] for s in ("mean", "median", "min", "max", "n")] == pytest.approx(
        [0.68, 0.70, 0.60, 0.74, 3])
    grid = analysis.aggregate_sweep("grid", db=known_db)
    assert len(grid) == 6 and list(grid.columns[:4]) == ["trial", "group", "optimizer.lr", TAU]
    assert grid["trial"].iloc[0] == "lr=0.0001,tau_m=5" and grid["final_val_acc_n"].tolist() == [2, 2, 2, 2, 2, 0]
    assert grid["final_val_acc_median"].iloc[3] == pytest.approx(0.83)


def test_learning_curves_average_completed_runs_per_epoch(known_db: str) -> None:
    curves = analysis.learning_curves("demo", metrics="val_acc", db=known_db)
    assert list(curves.columns) == ["trial", "key", "epoch", "mean", "std", "sem", "ci95", "n"]
    assert len(curves) == 2 * 4 and curves["epoch"].tolist() == [0, 1, 2, 3] * 2
    assert curves["n"].tolist() == [3] * 8  # the FAILED run logged epochs 0 and 1: not counted
    last = curves[(curves["trial"] == "lr=0.01") & (curves["epoch"] == 3)].iloc[0]
    assert last["mean"] == pytest.approx(0.85) and last["ci95"] == pytest.approx(T2 * 0.05 / math.sqrt(3))
    one = curves[(curves["trial"] == "lr=0.1") & (curves["epoch"] == 1)].iloc[0]
    assert one["mean"] == pytest.approx(0.68 / 3)
    by_lr = analysis.learning_curves("grid", metrics="val_acc", by="optimizer.lr", db=known_db)
    assert by_lr["optimizer.lr"].unique().tolist() == [1e-4, 1e-2, 1.0]
    assert by_lr.groupby("optimizer.lr")["n"].max().tolist() == [4, 4, 2]  # both tau_m pooled
