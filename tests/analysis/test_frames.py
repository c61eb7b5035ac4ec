"""analysis frames on the known database of conftest.py: experiments, runs, metrics, swept params."""
from __future__ import annotations

import pandas as pd
import pytest

import analysis
from analysis import ExperimentNotFound

LR_TAU = ["optimizer.lr", "model.layers[0].kernel.tau_m"]


def test_load_experiments_counts_runs_per_state(known_db: str) -> None:
    experiments = analysis.load_experiments(known_db)
    assert list(zip(experiments["name"], experiments["version"])) == [
        ("demo", 1), ("grid", 1), ("scratch", 1), ("scratch", 2)]
    demo = experiments.iloc[0]
    assert (demo["n_trials"], demo["n_runs"], demo["completed"], demo["failed"], demo["pending"]) == (2, 7, 6, 1, 0)
    grid = experiments.iloc[1]
    assert (grid["n_trials"], grid["n_runs"], grid["completed"], grid["failed"]) == (6, 12, 10, 2)
    assert experiments.iloc[3]["pending"] == 1 and experiments.iloc[3]["n_runs"] == 1
    assert {"id", "desc", "created_at", "running", "interrupted", "stale"} <= set(experiments.columns)


def test_load_runs_has_one_row_per_run_with_summaries_and_params(known_db: str) -> None:
    runs = analysis.load_runs("demo", db=known_db)
    assert len(runs) == 7 and runs["run_id"].is_unique
    assert runs["trial"].tolist() == ["lr=0.01"] * 4 + ["lr=0.1"] * 3
    assert runs["repeat"].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert set(runs["group"]) == {"lr_sweep"}
    assert runs["final_val_acc"].tolist() == pytest.approx([0.80, 0.85, 0.90, 0.10, 0.60, 0.70, 0.74])
    assert runs["best_val_acc"].iloc[0] == pytest.approx(0.82)
    # params as prefix-free dot-path columns, one value per trial
    assert runs["optimizer.lr"].tolist() == [0.01] * 4 + [0.1] * 3
    assert set(runs["model.layers[0].kernel.tau_m"]) == {10.0} and set(runs["env.T"]) == {20.0}
    assert set(runs["model.layers[0].kernel.type"]) == {"LIFKernel"} and set(runs["tags[1]"]) == {"demo"}
    assert set(runs["callbacks"]) == {"[]"}  # JSON params as text
    # the config key `epochs` next to the summary key `epochs`
    assert set(runs["param.epochs"]) == {3.0} and runs["epochs"].iloc[0] == 3.0
    failed = runs[runs["status"] == "FAILED"].iloc[0]
    assert (failed["repeat"], failed["error_type"], failed["error_message"]) == (3, "FloatingPointError", "loss is NaN")
    assert runs["duration_s"].notna().all() and str(runs["started_at"].dt.tz) == "UTC"
    assert runs["output_dir"].iloc[0] == "out/lr=0.01/repeat_0"


def test_param_named_like_a_summary_key_is_prefixed_before_any_run_completed(known_db: str) -> None:
    pending = analysis.load_runs("scratch", db=known_db)
    assert "param.epochs" in pending.columns and "epochs" not in pending.columns


def test_experiment_versions(known_db: str) -> None:
    latest = analysis.load_runs("scratch", db=known_db)
    assert latest["status"].tolist() == ["PENDING"] and "final_val_acc" not in latest.columns  # no summary yet
    first = analysis.load_runs("scratch", db=known_db, version=1)
    assert first["status"].tolist() == ["COMPLETED"] and first["final_val_acc"].tolist() == [0.5]
    with analysis.open_store(known_db) as store:
        record = store.get_experiment("scratch", version=1)
        assert analysis.load_runs(record, db=store)["run_id"].tolist() == first["run_id"].tolist()


def test_unknown_experiment_lists_the_known_ones(known_db: str) -> None:
    with pytest.raises(ExperimentNotFound, match="'nope'.*demo, grid, scratch"):
        analysis.load_runs("nope", db=known_db)
    with pytest.raises(ExperimentNotFound, match="demo version 9"):
        analysis.load_runs("demo", db=known_db, version=9)


def test_load_metrics_is_a_tidy_long_frame(known_db: str) -> None:
    metrics = analysis.load_metrics("demo", db=known_db)
    assert list(metrics.columns) == ["run_id", "trial", "group", "repeat", "status", "key", "epoch", "value"]
    assert len(metrics) == 6 * 3 * 4 + 1 * 3 * 2  # completed: 3 keys x 4 epochs; failed: 3 keys x 2 epochs
    val = analysis.load_metrics("demo", keys="val_acc", db=known_db)
    assert len(val) == 6 * 4 + 2 and set(val["key"]) == {"val_acc"}
    point = val[(val["trial"] == "lr=0.1") & (val["repeat"] == 2) & (val["epoch"] == 3)]
    assert point["value"].tolist() == pytest.approx([0.74])
    assert set(val[val["repeat"] == 3]["status"]) == {"FAILED"}
    both = analysis.load_metrics("demo", keys=["val_acc", "train_loss"], db=known_db)
    assert len(both) == 2 * len(val)
    assert analysis.load_metrics("scratch", db=known_db).empty


def test_varying_params_finds_exactly_the_swept_keys(known_db: str) -> None:
    assert analysis.varying_params("demo", db=known_db) == ["optimizer.lr"]
    assert analysis.varying_params("grid", db=known_db) == LR_TAU  # in sweep order
    assert analysis.varying_params("scratch", db=known_db) == []


def test_top_runs_ranks_completed_runs_only(known_db: str) -> None:
    best = analysis.top_runs("demo", n=2, db=known_db)
    assert best["final_val_acc"].tolist() == [0.90, 0.85] and best["trial"].tolist() == ["lr=0.01"] * 2
    assert list(best.columns) == ["run_id", "trial", "repeat", "seed", "final_val_acc", "optimizer.lr",
                                  "duration_s", "output_dir"]
    worst = analysis.top_runs("demo", n=1, ascending=True, db=known_db)
    assert worst["final_val_acc"].tolist() == [0.60]  # the FAILED run's 0.10 does not count
    assert len(analysis.top_runs("grid", n=100, db=known_db)) == 10
    with pytest.raises(ValueError, match="did you mean 'final_val_acc'"):
        analysis.top_runs("demo", metric="final_val_ac", db=known_db)


def test_frames_of_an_open_store_leave_it_open(known_db: str) -> None:
    with analysis.open_store(known_db) as store:
        assert isinstance(analysis.load_runs("demo", db=store), pd.DataFrame)
        assert len(analysis.load_runs("grid", db=store)) == 12
