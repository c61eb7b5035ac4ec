"""Multi-objective search: its points are trials with runs in the database, ``show`` returns the
Pareto front one recomputes from the stored summaries, a resumed search asks the same points as an
uninterrupted one, median pruning stops runs of a multi-objective study, bad settings fail up front."""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from testkit import TINY_CONFIG, write_experiment

import main
from experiment.executors import InlineExecutor
from experiment.search import run_search
from experiment.store import RunStatus, SQLStore

OBJECTIVES = """\
    objectives:
      - {metric: best_val_acc, direction: maximize}
      - {metric: final_spikes_per_sample, direction: minimize}
"""


def make(tmp_path: Path, trials: str, config: str = TINY_CONFIG, extra: str = "") -> tuple[Path, str]:
    folder = write_experiment(tmp_path / "exp", config, trials,
                              experiment=f"name: mo\nbase_dir: {tmp_path / 'out'}\nrepeat: 2\n"
                                         f"mlflow: {{enabled: false}}\n{extra}")
    return folder, f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}"


def stored_points(db: str, group: str) -> dict[str, dict]:
    """Per point of ``group``: its sampled values, its runs' states and the mean of each summary
    value over its COMPLETED runs, straight from the store."""
    with SQLStore(db, readonly=True) as store:
        exp = store.get_experiment("mo")
        trials = {t.id: t for t in store.trials(exp.id) if t.group_name == group}
        runs = [r for r in store.runs(exp.id) if r.trial_id in trials]
        summaries = store.summaries(exp.id)
    points = {t.name: {"values": t.sweep_point, "states": [], "summary": {}} for t in trials.values()}
    by_run = {r.id: r for r in runs}
    for run in runs:
        points[run.trial_name]["states"].append(run.status)
    sums: dict[str, dict[str, list[float]]] = {}
    for run_id, key, value in summaries:
        run = by_run.get(run_id)
        if run is not None and run.status == RunStatus.COMPLETED:
            sums.setdefault(run.trial_name, {}).setdefault(key, []).append(value)
    for name, values in sums.items():
        points[name]["summary"] = {key: sum(v) / len(v) for key, v in values.items()}
    return points


def hand_front(points: dict[str, dict]) -> set[str]:
    """Maximise best_val_acc, minimise final_spikes_per_sample; a point is dominated by one at
    least as good in both and better in one (values within 1e-9 relative are equal)."""
    scores = {name: (p["summary"]["best_val_acc"], -p["summary"]["final_spikes_per_sample"])
              for name, p in points.items() if "pruned_at_epoch" not in p["summary"]}

    def better(a: float, b: float) -> bool:
        return a > b + 1e-9 * abs(b)

    def worse(a: float, b: float) -> bool:
        return a < b - 1e-9 * abs(b)

    return {name for name, (a, b) in scores.items()
            if not any(not worse(a2, a) and not worse(b2, b) and (better(a2, a) or better(b2, b))
                       for a2, b2 in scores.values())}


def test_nsga2_search_records_its_points_as_runs_and_show_returns_the_recomputed_front(tmp_path, capsys):
    trials = f"""\
- name: mo
  search:
    method: nsga2
    population_size: 2
    n_trials: 4
    params:
      optimizer.lr: {{loguniform: [0.01, 0.1]}}
      model.layers[0].out_features: {{randint: [4, 24]}}
{OBJECTIVES}"""
    folder, db = make(tmp_path, trials, TINY_CONFIG.replace("epochs: 2", "epochs: 1"))
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    sampled = stored_points(db, "mo")
    assert sorted(sampled) == [f"mo-{k}" for k in range(4)]
    points = {}
    for name, point in sampled.items():
        assert 0.01 <= point["values"]["optimizer.lr"] <= 0.1 and 4 <= point["values"]["model.layers[0].out_features"] <= 24
        if point["states"]:
            assert point["states"] == [RunStatus.COMPLETED] * 2  # each point: its repeats as runs
            points[name] = point
        else:  # sampled again (a crossover can repeat a parent): the runs of that config are the earlier point's
            assert point["values"] in [p["values"] for p in points.values()]
    expected = hand_front(points)
    assert expected
    capsys.readouterr()
    assert main.main(["run", str(folder), "--no-progress"]) == 0  # resumed: the study is rebuilt, nothing new asked
    assert stored_points(db, "mo") == sampled
    capsys.readouterr()
    assert main.main(["show", "mo", "--db", db, "--json"]) == 0
    search = json.loads(capsys.readouterr().out)["searches"]["mo"]
    assert search["points"] == len(points) and search["pruned"] == 0
    assert search["params"] == ["optimizer.lr", "model.layers[0].out_features"]
    assert {p["trial"] for p in search["front"]} == expected
    for shown in search["front"]:
        point = points[shown["trial"]]
        assert shown["best_val_acc_mean"] == pytest.approx(point["summary"]["best_val_acc"], rel=1e-12)
        assert shown["final_spikes_per_sample_mean"] == pytest.approx(point["summary"]["final_spikes_per_sample"],
                                                                      rel=1e-12)
        assert shown["best_val_acc_n"] == 2
        assert shown["optimizer.lr"] == point["values"]["optimizer.lr"]
        assert shown["model.layers[0].out_features"] == point["values"]["model.layers[0].out_features"]
    accuracies = [p["best_val_acc_mean"] for p in search["front"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert main.main(["show", "mo", "--db", db]) == 0
    text = capsys.readouterr().out
    assert f"Pareto front ({len(expected)} of {len(points)} completed points)" in text
    assert all(name in text.split("Pareto front", 1)[1] for name in expected)


class FakeSession:
    """What run_search needs of a session, with objective values made from the sampled params;
    ``stop_after`` points, the next execute is interrupted (the point asked stays recorded, as a
    trial row does; a resumed session finishes its runs before the search goes on)."""

    def __init__(self, points: dict | None = None, stop_after: int | None = None):
        self.root_seed, self.extra_callbacks, self.stop_after = 7, {}, stop_after
        self.points = points if points is not None else {}  # name -> (params, values)
        self.store = SimpleNamespace(summaries=lambda experiment_id: [], runs=lambda experiment_id, *a: [])
        self.experiment = SimpleNamespace(id=1)

    def finished_points(self, group):
        return dict(self.points)

    def add_search_point(self, entry, name, values):
        x, y = values["x"], values["y"]
        self.points[name] = (values, [math.sin(3 * x) + y, (x - 0.5) ** 2 + y ** 2])
        return SimpleNamespace(name=name)

    def execute(self, tasks):
        if self.stop_after is not None and len(self.points) > self.stop_after:
            raise KeyboardInterrupt

    def objective_values(self, name, objectives):
        return self.points[name][1]


@pytest.mark.parametrize("method", ["tpe", "nsga2"])
def test_a_resumed_search_asks_the_same_points_as_an_uninterrupted_one(method):
    search = {"method": method, "n_trials": 12, "params": {"x": {"uniform": [0.0, 1.0]}, "y": {"loguniform": [0.1, 10]}},
              "objectives": [{"metric": "best_a", "direction": "maximize"}, {"metric": "best_b", "direction": "minimize"}]}
    if method == "nsga2":
        search["population_size"] = 4  # generations 0, 1 and 2: the resumed one starts in generation 1
    entry = SimpleNamespace(name="s", search=search)
    whole = FakeSession()
    run_search(entry, whole, InlineExecutor(), lambda trials: [])
    interrupted = FakeSession(stop_after=6)
    with pytest.raises(KeyboardInterrupt):
        run_search(entry, interrupted, InlineExecutor(), lambda trials: [])
    assert len(interrupted.points) == 7
    resumed = FakeSession(dict(interrupted.points))  # a new session: the study is rebuilt from the recorded points
    study = run_search(entry, resumed, InlineExecutor(), lambda trials: [])
    assert list(resumed.points) == [f"s-{k:02d}" for k in range(12)]
    assert resumed.points == whole.points
    assert len({json.dumps(p) for p, _ in whole.points.values()}) == 12  # twelve different points
    assert len(study.trials) == 12


def test_median_pruning_stops_runs_of_a_multiobjective_search(tmp_path, capsys):
    trials = f"""\
- name: mo
  repeat: 1
  search:
    method: tpe
    n_trials: 6
    seed: 3
    pruner: median
    params:
      optimizer.lr: {{choice: [0.03, 1.0e-7]}}
      model.layers[0].out_features: {{randint: [8, 24]}}
{OBJECTIVES}"""
    folder, db = make(tmp_path, trials, TINY_CONFIG.replace("epochs: 2", "epochs: 3"))
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    points = stored_points(db, "mo")
    pruned = {name for name, p in points.items() if "pruned_at_epoch" in p["summary"]}
    assert pruned, "no run was pruned: pick another search seed"
    for name in pruned:
        summary = points[name]["summary"]
        assert 1 <= summary["pruned_at_epoch"] == summary["epochs"] < 3  # stopped after that epoch
        assert points[name]["states"] == [RunStatus.COMPLETED]
    capsys.readouterr()
    assert main.main(["show", "mo", "--db", db, "--json"]) == 0
    search = json.loads(capsys.readouterr().out)["searches"]["mo"]
    assert search["pruned"] == len(pruned) and search["points"] == 6
    assert {p["trial"] for p in search["front"]} == hand_front(points)
    assert not pruned & {p["trial"] for p in search["front"]}


@pytest.mark.parametrize("search, extra, message", [
    ("{method: tpe, n_trials: 2, pruner: median, params: {optimizer.lr: {uniform: [0.01, 0.1]}}}",
     "executor: {backend: loky, n_jobs: 2}\n",
     "trials.yaml (s): search.pruner median needs the inline executor (it stops runs while they train), got loky; "
     "set pruner: none or executor: {backend: inline}"),
    ("{method: random, n_trials: 2, pruner: median, params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.pruner median needs a model-based search (method: tpe or nsga2), got method 'random'"),
    ("{method: tpe, n_trials: 2, population_size: 4, params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.population_size applies to method: nsga2 only, got method 'tpe'"),
    ("{method: nsga2, n_trials: 2, population_size: 1, params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.population_size must be an integer >= 2, got 1"),
    ("{method: tpe, n_trials: 2, pruner: median, objectives: [{metric: n_params, direction: minimize}], "
     "params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.pruner median prunes on the per-epoch values of the first objective, so it must be a best_<metric> "
     "or final_<metric> summary, got 'n_params'"),
    ("{method: tpe, n_trials: 2, pruner: {type: median, startup_runs: 4, warmup: 3}, "
     "params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.pruner.warmup is not a pruner setting; allowed: type, startup_runs, warmup_epochs"),
    ("{method: tpe, n_trials: 2, pruner: {type: median, warmup_epochs: -1}, "
     "params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.pruner.warmup_epochs must be an integer >= 0, got -1"),
    ("{method: tpe, n_trials: 2, pruner: mean, params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.pruner must be one of none, median or {type: median, startup_runs: N, warmup_epochs: M}, got 'mean'"),
    ("{method: nsga2, n_trials: 2, objectives: [best_val_acc, best_val_acc], "
     "params: {optimizer.lr: {uniform: [0.01, 0.1]}}}", "",
     "search.objectives names a metric twice: best_val_acc, best_val_acc"),
])
def test_bad_search_settings_fail_before_anything_is_written(tmp_path, capsys, search, extra, message):
    folder, _ = make(tmp_path, f"- name: s\n  search: {search}\n", extra=extra)
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
