"""RunPlots draws plots/learning_curves.png at the end of a fit and never fails the run."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from pipeline.callbacks.run_plots import RunPlots

HISTORY = [{"epoch": 0, "train_loss": 1.0, "train_acc": 0.5}, {"epoch": 1, "train_loss": 0.5, "train_acc": 0.75}]


def test_the_learning_curves_land_in_the_run_folder(tmp_path: Path):
    plots = RunPlots()
    plots.on_fit_end(SimpleNamespace(run_dir=tmp_path, history=HISTORY))
    assert (tmp_path / "plots" / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
    assert plots.problem is None


def test_a_plotting_problem_is_kept_as_one_line_not_raised(tmp_path: Path):
    (tmp_path / "plots").write_text("a file where the folder should be")
    plots = RunPlots()
    plots.on_fit_end(SimpleNamespace(run_dir=tmp_path, history=HISTORY))
    assert plots.problem.startswith("could not draw plots/: ") and "\n" not in plots.problem


def test_without_a_run_folder_nothing_is_drawn():
    plots = RunPlots()
    plots.on_fit_end(SimpleNamespace(run_dir=None, history=HISTORY))
    assert plots.problem is None
