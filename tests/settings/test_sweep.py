"""Sweeps and random search expand into trials before anything runs."""
from __future__ import annotations

import pytest
from testkit import TINY_CONFIG, write_experiment

from settings.errors import ConfigError
from settings.experiment_files import TrialSettings
from settings.resolve import resolve_experiment
from settings.sweep import expand_grid, expand_trial, expand_values


def test_generators():
    assert expand_values({"linspace": [5, 20, 4]}, "p") == [5.0, 10.0, 15.0, 20.0]
    assert expand_values({"logspace": [-3, -1, 3]}, "p") == [0.001, 0.01, 0.1]
    assert expand_values({"range": [16, 65, 16]}, "p") == [16, 32, 48, 64]
    assert expand_values({"range": [0.1, 0.4, 0.1]}, "p") == [0.1, 0.2, 0.3]
    with pytest.raises(ConfigError, match="unknown generator 'linspac'"):
        expand_values({"linspac": [1, 2, 3]}, "p")
    with pytest.raises(ConfigError, match="count must be an integer >= 1"):
        expand_values({"linspace": [1, 2, 0]}, "p")


def test_grid_with_a_tied_pair_and_a_generator():
    sweep = {("optimizer.lr", "scheduler.max_lr"): [0.1, 0.2],
             "model.layers[0].kernel.tau_m": {"linspace": [10, 20, 3]}}
    points = expand_grid("grid", sweep, {"epochs": 3})
    assert len(points) == 6
    first = points[0]
    assert first.values == {"optimizer.lr": 0.1, "scheduler.max_lr": 0.1, "model.layers[0].kernel.tau_m": 10.0}
    assert first.settings["epochs"] == 3 and first.settings["optimizer.lr"] == 0.1
    assert first.name == "grid-lr=0.1-max_lr=0.1-tau_m=10"
    assert [p.values["model.layers[0].kernel.tau_m"] for p in points] == [10.0, 15.0, 20.0] * 2
    assert [p.values["optimizer.lr"] for p in points] == [0.1] * 3 + [0.2] * 3


def test_tied_paths_with_per_path_values():
    points = expand_grid("g", {("a.x", "b.y"): [[1, 10], [2, 20]]}, None)
    assert [p.values for p in points] == [{"a.x": 1, "b.y": 10}, {"a.x": 2, "b.y": 20}]


def test_random_search_is_reproducible_from_the_root_seed():
    search = {"method": "random", "n_trials": 5,
              "params": {"optimizer.lr": {"loguniform": [1e-4, 1e-1]}, "batch_size": {"choice": [16, 32, 64]},
                         "model.layers[0].out_features": {"randint": [8, 32]}, "x.y": {"uniform": [0, 1]}}}
    trial = TrialSettings("rand", search=search)
    a, b, c = expand_trial(trial, 1), expand_trial(trial, 1), expand_trial(trial, 2)
    assert [p.values for p in a] == [p.values for p in b] and [p.values for p in a] != [p.values for p in c]
    for p in a:
        assert 1e-4 <= p.values["optimizer.lr"] <= 1e-1 and p.values["batch_size"] in (16, 32, 64)
        assert 8 <= p.values["model.layers[0].out_features"] <= 32
    assert [p.name for p in a] == [f"rand-{i}" for i in range(5)]


def test_every_sweep_point_is_validated_and_listed(tmp_path, capsys):
    import main

    trials = ("- name: grid\n  sweep:\n    '[optimizer.lr, optimizer.weight_decay]': [0.1, 0.01]\n"
              "    model.layers[0].out_features: [8, 0]\n")
    folder = write_experiment(tmp_path / "e", TINY_CONFIG, trials)
    with pytest.raises(ConfigError) as info:
        resolve_experiment(folder)
    lines = [str(i) for i in info.value.issues]
    assert lines == ["trial 'grid-lr=0.1-weight_decay=0.1-out_features=0': model.layers[0].out_features must be "
                     "an integer > 0, got 0 (and in 1 more trial)"]
    (folder / "trials.yaml").write_text(trials.replace("[8, 0]", "[8, 16]"))
    resolved = resolve_experiment(folder)
    assert [t.name for t in resolved.trials] == ["grid-lr=0.1-weight_decay=0.1-out_features=8",
                                                 "grid-lr=0.1-weight_decay=0.1-out_features=16",
                                                 "grid-lr=0.01-weight_decay=0.01-out_features=8",
                                                 "grid-lr=0.01-weight_decay=0.01-out_features=16"]
    assert resolved.trials[3].config["model"]["layers"][0]["out_features"] == 16
    assert resolved.trials[3].group == "grid"
    assert main.main(["config", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("# trial grid-") == 4 and "# sweep point:" in out


def test_bad_sweep_specs_name_their_path(tmp_path):
    folder = write_experiment(tmp_path / "e", TINY_CONFIG, "- name: g\n  sweep:\n    optimizer.lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"trials.yaml \(g\): sweep.optimizer.lr must be a list of values"):
        resolve_experiment(folder)
    (folder / "trials.yaml").write_text("- name: g\n  sweep:\n    optimizer.lrr: [0.1]\n")
    with pytest.raises(ConfigError, match="optimizer.lrr is not a parameter of Adam"):
        resolve_experiment(folder)


def test_trial_filter_selects_a_whole_trial_or_single_sweep_points(tmp_path):
    trials = ("- name: base\n"
              "- name: grid\n  sweep:\n    optimizer.lr: [0.1, 0.01, 0.001]\n")
    folder = write_experiment(tmp_path / "e", TINY_CONFIG, trials)
    assert [t.name for t in resolve_experiment(folder, only=["grid"]).trials] == [
        "grid-lr=0.1", "grid-lr=0.01", "grid-lr=0.001"]
    picked = resolve_experiment(folder, only=["grid-lr=0.01", "base"]).trials
    assert [t.name for t in picked] == ["base", "grid-lr=0.01"]
    assert picked[1].config["optimizer"]["lr"] == 0.01 and picked[1].group == "grid"
    with pytest.raises(ConfigError, match="no trial or sweep point named 'grid-lr=0.5'; trials: base, grid"):
        resolve_experiment(folder, only=["grid-lr=0.5"])
