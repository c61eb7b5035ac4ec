"""The plot functions write PNG files where they are told to (or under outputs/), and what they
draw is honest: bands inside the metric's range, dots where n < 3, search samples never joined,
log axes and units where they belong."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import analysis
from analysis.plots import learning_curve_figures, metric_vs_param_figure, wants_log_axis

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


def test_log_axis_beyond_one_and_a_half_decades() -> None:
    assert wants_log_axis([1e-4, 1e-2, 1.0]) and wants_log_axis([0.001, 0.1])
    assert wants_log_axis([1.0, 40.0]) and not wants_log_axis([1.0, 30.0])  # 10^1.5 = 31.6
    assert not wants_log_axis([-1.0, 10.0, 1000.0]) and not wants_log_axis([0.0, 1000.0])
    assert not wants_log_axis([5.0])


def bands(axes) -> list[np.ndarray]:
    """The y values of every filled band (fill_between) and error bar drawn on ``axes``."""
    from matplotlib.collections import LineCollection, PolyCollection

    found = []
    for collection in axes.collections:
        if isinstance(collection, PolyCollection):
            found += [path.vertices[:, 1] for path in collection.get_paths()]
        elif isinstance(collection, LineCollection):
            found += [np.asarray(segment)[:, 1] for segment in collection.get_segments()]
    return [v[np.isfinite(v)] for v in found if np.isfinite(v).any()]


def dots(axes) -> list[np.ndarray]:
    from matplotlib.collections import PathCollection

    return [c.get_offsets()[:, 1] for c in axes.collections if isinstance(c, PathCollection)]


RANGES = {"val_acc": (0.0, 1.0), "final_val_acc": (0.0, 1.0), "train_loss": (0.0, math.inf),
          "final_train_loss": (0.0, math.inf), "spikes_per_sample": (0.0, math.inf),
          "final_spikes_per_sample": (0.0, math.inf)}


def test_every_band_stays_in_the_metric_range(wild_db: str) -> None:
    # a Student-t 95% interval of these repeats leaves the range: lr=0.001's val_acc 0.02 and
    # 0.98 give 0.5 +- 12.7 * 0.68 / sqrt(2), lr=0.1's 0, 0.01, 0.99, 1 give 0.5 +- 0.91
    curves = analysis.learning_curves("wild", ["val_acc"], db=wild_db)
    assert ((curves["mean"] + curves["ci95"]) > 1).all() and ((curves["mean"] - curves["ci95"]) < 0).all()
    _, figures = learning_curve_figures("wild", ["val_acc", "train_loss", "spikes_per_sample"], db=wild_db)
    assert set(figures) == {"val_acc", "train_loss", "spikes_per_sample"}
    drawn = {key: figure.axes[0] for key, figure in figures.items()}
    for metric in ("final_val_acc", "final_train_loss", "final_spikes_per_sample"):
        drawn[metric] = metric_vs_param_figure("wild", metric, "optimizer.lr", db=wild_db)[1].axes[0]
    for metric, axes in drawn.items():
        low, high = RANGES[metric]
        found = bands(axes)
        assert found, f"{metric}: the 4 repeats of lr=0.1 get a band"
        for values in found:
            assert values.min() >= low and values.max() <= high, (metric, values)
        assert "bootstrap CI" in axes.get_title(), metric
        # the 2-repeat points show their single runs as dots: 2 trials x 2 runs per epoch or point
        assert sum(len(d) for d in dots(axes)) == (2 * 2 * 3 if metric in figures else 2 * 2), metric


def test_a_title_promises_a_band_only_when_one_is_drawn(known_db: str) -> None:
    # grid: 2 repeats per point, so dots and no band
    _, figures = learning_curve_figures("grid", ["val_acc"], db=known_db)
    axes = figures["val_acc"].axes[0]
    assert not bands(axes) and dots(axes) and "CI" not in axes.get_title()
    assert "(n=2)" in " ".join(t.get_text() for t in axes.get_legend().get_texts())
    # demo: 3 repeats, bands
    axes = learning_curve_figures("demo", ["val_acc"], db=known_db)[1]["val_acc"].axes[0]
    assert bands(axes) and "95% bootstrap CI of the mean" in axes.get_title()


def test_search_samples_are_never_joined_to_grid_means(mixed_db: str) -> None:
    tau = "model.layers[0].kernel.tau_m"
    _, figure = metric_vs_param_figure("mixed", "best_val_acc", "optimizer.lr", hue=tau, db=mixed_db)
    axes = figure.axes[0]
    lines = [line for line in axes.get_lines() if len(line.get_xdata())]
    assert len(lines) == 2  # one per tau_m, each through the two grid lrs only
    for line in lines:
        assert list(line.get_xdata()) == [0.001, 0.01] and line.get_linestyle() == "-"
    [crosses] = [c for c in axes.collections if c.get_offsets().shape[0] == 3]
    assert sorted(crosses.get_offsets()[:, 0]) == [0.002, 0.004, 0.008]
    labels = " ".join(t.get_text() for t in axes.get_legend().get_texts())
    assert "search tpe: 3 sampled runs (not joined)" in labels and "tau_m=5" in labels
    assert axes.get_xscale() == "log"  # a decade only, but searched log-uniformly
    assert axes.get_xlabel() == "optimizer.lr" and axes.get_ylabel() == "best_val_acc (fraction)"
    _, by_tau = metric_vs_param_figure("mixed", "best_val_acc", tau, db=mixed_db)
    assert by_tau.axes[0].get_xlabel() == f"{tau} (ms)" and by_tau.axes[0].get_xscale() == "linear"


def test_search_scatter_and_heatmap_keep_grid_and_search_apart(mixed_db: str, tmp_path: Path) -> None:
    tau = "model.layers[0].kernel.tau_m"
    assert_png(analysis.plot_heatmap("mixed", "best_val_acc", "optimizer.lr", tau, out=tmp_path / "h.png",
                                     db=mixed_db))
    assert analysis.plots.plot_search_scatter("mixed", "best_val_acc", "optimizer.lr", tau, out=tmp_path / "s.png",
                                              db=mixed_db) is None  # the search did not vary tau_m


def test_many_trials_get_small_multiples_or_top_k(mixed_db: str) -> None:
    _, figures = learning_curve_figures("many", ["val_acc", "train_loss"], db=mixed_db)
    panels = [axes for axes in figures["val_acc"].axes if axes.get_visible()]
    assert len(panels) == 9 and all(len(axes.get_lines()) == 1 for axes in panels)
    _, top = learning_curve_figures("many", ["val_acc", "train_loss"], db=mixed_db, top_k=3)
    legend = [t.get_text() for t in top["val_acc"].axes[0].get_legend().get_texts()]
    assert legend[:3] == ["t6 (n=1)", "t7 (n=1)", "t8 (n=1)"]  # the highest final val_acc, in trial order
    assert "top 3 of 9" in top["val_acc"].axes[0].get_title()
    loss = [t.get_text() for t in top["train_loss"].axes[0].get_legend().get_texts()][:3]
    assert sorted(loss) == ["t6 (n=1)", "t7 (n=1)", "t8 (n=1)"]  # lowest final loss: 1 - i/9
    with pytest.raises(ValueError, match="top_k must be an integer >= 1, got 0"):
        learning_curve_figures("many", ["val_acc"], db=mixed_db, top_k=0)
