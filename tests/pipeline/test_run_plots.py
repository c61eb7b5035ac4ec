"""RunPlots draws plots/learning_curves.png (and omega_b_offset.png for resonator kernels) at the
end of a fit and never fails the run."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from pipeline.callbacks.run_plots import RESONATOR_PLOT, RunPlots, plot_resonators, resonator_values

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


class FakeResonator(torch.nn.Module):
    """A kernel with what plots/omega_b_offset.png reads: per-neuron omega and b_offset, and the
    Euler step ``delta`` (as the resonator kernels) or ``dt``."""

    def __init__(self, omega: list[float], b_offset: list[float], delta: float | None = 0.01, dt: float | None = None):
        super().__init__()
        self.omega = torch.nn.Parameter(torch.tensor(omega))
        self.b_offset = torch.nn.Parameter(torch.tensor(b_offset))
        if delta is not None:
            self.delta = delta
        if dt is not None:
            self.dt = dt


class FakeModel(torch.nn.Module):
    def __init__(self, *kernels: torch.nn.Module):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Module() for _ in kernels)
        for layer, kernel in zip(self.layers, kernels):
            layer.kernel = kernel


def fit(plots: RunPlots, model: torch.nn.Module, run_dir: Path, learn=None) -> None:
    """on_fit_start, a "training" step that changes the kernel values, on_fit_end."""
    state = SimpleNamespace(run_dir=run_dir, history=HISTORY, model=model)
    plots.on_fit_start(state)
    if learn is not None:
        with torch.no_grad():
            learn(model)
    plots.on_fit_end(state)


def test_resonator_kernels_get_their_initial_and_learned_omega_and_b_offset_plotted(tmp_path: Path):
    model = FakeModel(FakeResonator([15.0, 30.0, 50.0], [0.1, 0.5, 1.0]))
    plots = RunPlots()
    fit(plots, model, tmp_path, learn=lambda m: m.layers[0].kernel.omega.add_(5.0))
    assert plots.problem is None
    assert torch.equal(plots.initial["layers.0.kernel"]["omega"], torch.tensor([15.0, 30.0, 50.0], dtype=torch.float64))
    assert resonator_values(model)["layers.0.kernel"]["omega"].tolist() == [20.0, 35.0, 55.0]
    png = tmp_path / "plots" / RESONATOR_PLOT
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000


def test_the_initial_values_survive_a_resume_through_the_checkpointed_state(tmp_path: Path):
    model = FakeModel(FakeResonator([15.0, 30.0], [0.1, 0.5]),
                      FakeResonator([3.0, 4.0], [2.0, 3.0], delta=None, dt=0.1))
    first = RunPlots()
    first.on_fit_start(SimpleNamespace(run_dir=tmp_path, history=HISTORY, model=model))
    saved = first.state_dict()
    with torch.no_grad():
        model.layers[0].kernel.omega.mul_(2.0)
    resumed = RunPlots()
    resumed.load_state_dict(saved)
    fit(resumed, model, tmp_path)
    assert resumed.initial["layers.0.kernel"]["omega"].tolist() == [15.0, 30.0]
    assert set(resumed.initial) == {"layers.0.kernel", "layers.1.kernel"}
    assert (tmp_path / "plots" / RESONATOR_PLOT).stat().st_size > 0


def test_a_model_without_resonator_kernels_gets_only_the_learning_curves(tmp_path: Path):
    model = FakeModel(torch.nn.Linear(2, 2))
    plots = RunPlots()
    fit(plots, model, tmp_path)
    assert plots.initial == {} and plots.state_dict() == {} and plots.problem is None
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["learning_curves.png"]
    assert plot_resonators(model, {}, tmp_path / "none.png") is None
