"""The plot functions write non-empty PNG files where they are told to (or under outputs/)."""
from __future__ import annotations

from pathlib import Path

import pytest

import analysis
from analysis.plots import wants_log_axis

TAU = "model.layers[0].kernel.tau_m"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 2000
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_learning_curves_one_png_per_recorded_metric(known_db: str, tmp_path: Path) -> None:
    paths = analysis.plot_learning_curves("demo", metrics=("train_acc", "val_acc", "never_logged"),
                                          out_dir=tmp_path / "curves", db=known_db)
    assert [p.name for p in paths] == ["learning_curve_train_acc.png", "learning_curve_val_acc.png"]
    for path in paths:
        assert path.parent == tmp_path / "curves"
        assert_png(path)
    [by_lr] = analysis.plot_learning_curves("grid", metrics="val_acc", by="optimizer.lr", out_dir=tmp_path,
                                            db=known_db)
    assert by_lr.name == "learning_curve_val_acc_by_optimizer.lr.png"
    assert_png(by_lr)


def test_metric_vs_param(known_db: str, tmp_path: Path) -> None:
    out = analysis.plot_metric_vs_param("grid", "final_val_acc", x="optimizer.lr", hue=TAU,
                                        out=tmp_path / "lr.png", db=known_db)
    assert out == tmp_path / "lr.png"
    assert_png(out)
    assert_png(analysis.plot_metric_vs_param("demo", "final_val_acc", x="trial", out=tmp_path / "t.png",
                                             db=known_db))
    with pytest.raises(ValueError, match="did you mean 'optimizer.lr'"):
        analysis.plot_metric_vs_param("grid", "final_val_acc", x="optimizer.l", out=tmp_path / "x.png", db=known_db)


def test_heatmap(known_db: str, tmp_path: Path) -> None:
    out = analysis.plot_heatmap("grid", "final_val_acc", x="optimizer.lr", y=TAU, out=tmp_path / "grid.png",
                                db=known_db)
    assert_png(out)


def test_default_paths_are_under_the_experiment_report_folder(known_db: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = Path("outputs") / "grid" / "report"
    assert analysis.plot_metric_vs_param("grid", "final_val_acc", x="optimizer.lr", db=known_db) == \
        report / "final_val_acc_vs_optimizer.lr.png"
    path = analysis.plot_heatmap("grid", "final_val_acc", x="optimizer.lr", y=TAU, db=known_db)
    assert path.parent == report
    assert_png(tmp_path / path)


def test_log_axis_only_beyond_two_decades() -> None:
    assert wants_log_axis([1e-4, 1e-2, 1.0])
    assert not wants_log_axis([0.001, 0.1])  # exactly two decades
    assert not wants_log_axis([-1.0, 10.0, 1000.0]) and not wants_log_axis([0.0, 1000.0])
    assert not wants_log_axis([5.0])
