"""Pareto fronts by hand: which points survive (ties, duplicates, both directions, NaN, pruned
points), their order, and the front of a search read from a hand-made database."""
from __future__ import annotations

import hashlib
import json
import math

import pandas as pd
import pytest

from analysis.pareto import front_of, non_dominated, pareto_front, search_fronts
from experiment.store import NewRun, RunStatus, SQLStore

ACC_UP_SPIKES_DOWN = [{"metric": "acc", "direction": "maximize"}, {"metric": "spikes", "direction": "minimize"}]


def test_dominated_points_are_dropped():
    # maximise acc, minimise spikes
    frame = pd.DataFrame({"acc": [0.90, 0.80, 0.95, 0.85, 0.95, 0.70],
                          "spikes": [10.0, 5.0, 20.0, 12.0, 25.0, 5.0]}, index=list("abcdef"))
    # d (0.85, 12) is dominated by a (0.90, 10); e (0.95, 25) by c (0.95, 20); f (0.70, 5) by b (0.80, 5)
    mask = non_dominated(frame, [True, False])
    assert mask.to_dict() == {"a": True, "b": True, "c": True, "d": False, "e": False, "f": False}


def test_ties_do_not_dominate_and_directions_flip():
    frame = pd.DataFrame({"x": [1.0, 1.0, 2.0], "y": [3.0, 3.0, 4.0]})
    assert non_dominated(frame, [True, True]).tolist() == [False, False, True]  # (2, 4) is larger in both
    assert non_dominated(frame, [False, False]).tolist() == [True, True, False]  # equal rows keep each other
    assert non_dominated(frame, [True, False]).tolist() == [True, True, True]  # a trade-off: nobody dominates
    assert non_dominated(frame, [False, True]).tolist() == [True, True, True]


def test_a_tie_in_one_objective_is_decided_by_the_other():
    # same accuracy: fewer spikes wins; same spikes: higher accuracy wins; (0.9, 4) beats both
    frame = pd.DataFrame({"acc": [0.8, 0.8, 0.9, 0.9], "spikes": [5.0, 4.0, 4.0, 6.0]})
    assert non_dominated(frame, [True, False]).tolist() == [False, False, True, False]


def points(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["trial", "omega", "acc_mean", "spikes_mean", "pruned"])


def test_front_of_leaves_out_nan_and_pruned_points_and_sorts_best_first():
    frame = points([("s-0", 0.1, 0.70, 2.0, False),
                    ("s-1", 1.0, 0.90, 8.0, False),
                    ("s-2", 3.0, 0.90, 8.0, False),  # a duplicate of s-1: both stay
                    ("s-3", 5.0, 0.95, 1.0, True),  # would dominate everything, but was pruned
                    ("s-4", 7.0, math.nan, 0.5, False),  # no accuracy: not comparable
                    ("s-5", 9.0, 0.80, 9.0, False),  # dominated by s-1
                    ("s-6", 0.5, 0.80, 3.0, False)])
    front = front_of(frame, ACC_UP_SPIKES_DOWN)
    assert front["trial"].tolist() == ["s-1", "s-2", "s-6", "s-0"]  # accuracy down, then spikes up, then name
    assert front["omega"].tolist() == [1.0, 3.0, 0.5, 0.1]  # the sampled parameters travel with their point
    minimise_both = [{"metric": "acc", "direction": "minimize"}, {"metric": "spikes", "direction": "minimize"}]
    assert front_of(frame, minimise_both)["trial"].tolist() == ["s-0"]  # (0.70, 2.0) is lowest in both


def test_one_objective_gives_the_best_points_with_ties():
    frame = points([("s-0", 0.1, 0.70, 2.0, False), ("s-1", 1.0, 0.90, 8.0, False), ("s-2", 3.0, 0.90, 1.0, False)])
    assert front_of(frame, ACC_UP_SPIKES_DOWN[:1])["trial"].tolist() == ["s-1", "s-2"]
    assert front_of(frame, ACC_UP_SPIKES_DOWN[1:])["trial"].tolist() == ["s-2"]
    assert front_of(frame.iloc[0:0], ACC_UP_SPIKES_DOWN).empty


SEARCH = {"method": "tpe", "n_trials": 4, "params": {"loss.omega": {"loguniform": [0.1, 10.0]}},
          "objectives": [{"metric": "best_val_acc", "direction": "maximize"},
                         {"metric": "final_spike_density", "direction": "minimize"}]}
#: point -> omega, [(best_val_acc, final_spike_density, pruned_at_epoch or None) per repeat]
POINTS = {"s-0": (0.2, [(0.90, 0.30, None), (0.80, 0.10, None)]),  # means 0.85, 0.20
          "s-1": (1.0, [(0.85, 0.25, None), (0.85, 0.15, None)]),  # 0.85, 0.20: a duplicate of s-0
          "s-2": (4.0, [(0.70, 0.05, None), (0.60, 0.05, None)]),  # 0.65, 0.05
          "s-3": (8.0, [(0.99, 0.01, 2.0), (0.99, 0.01, None)]),  # best in both, but one repeat was pruned
          "s-4": (0.5, [(0.80, 0.30, None), (0.70, 0.30, None)])}  # 0.75, 0.30: dominated by s-0


@pytest.fixture
def search_db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'search.db'}"
    with SQLStore.create(url) as store:
        experiment = store.open_experiment("sparse", "a search", 1, "configs/sparse",
                                           {"trials": [{"name": "s", "search": SEARCH}, {"name": "plain"}]}, {})
        for name, (omega, repeats) in POINTS.items():
            config = {"loss": {"type": "CESpikeSparsity", "omega": omega}, "epochs": 3}
            digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
            trial = store.upsert_trial(experiment.id, name, config, digest, sweep_point={"loss.omega": omega},
                                       group_name="s")
            for repeat, (acc, density, pruned) in enumerate(repeats):
                [run] = store.ensure_runs(experiment.id, [NewRun(trial.id, digest, repeat, repeat, f"out/{name}/{repeat}")])
                attempt = store.claim_run(run.id, "host", 1)
                summary = {"best_val_acc": acc, "final_spike_density": density}
                if pruned is not None:
                    summary["pruned_at_epoch"] = pruned
                store.finish_run(run.id, attempt.id, RunStatus.COMPLETED, summary=summary)
        pending = store.upsert_trial(experiment.id, "s-5", {"epochs": 3}, "x" * 64, sweep_point={"loss.omega": 2.0},
                                     group_name="s")
        store.ensure_runs(experiment.id, [NewRun(pending.id, "x" * 64, 0, 0, "out/s-5/0")])  # never ran
    return url


def test_the_front_of_a_search_averages_repeats_and_leaves_out_pruned_points(search_db):
    front = pareto_front("sparse", "s", SEARCH["objectives"], db=search_db, params=["loss.omega"])
    assert front["trial"].tolist() == ["s-0", "s-1", "s-2"]
    assert front["best_val_acc_mean"].tolist() == pytest.approx([0.85, 0.85, 0.65])
    assert front["final_spike_density_mean"].tolist() == pytest.approx([0.20, 0.20, 0.05])
    assert front["best_val_acc_n"].tolist() == [2, 2, 2]
    assert front["loss.omega"].tolist() == [0.2, 1.0, 4.0]
    [search] = search_fronts("sparse", db=search_db).values()
    assert search.params == ["loss.omega"] and search.points["trial"].tolist() == ["s-0", "s-1", "s-2", "s-3", "s-4"]
    assert search.points["pruned"].tolist() == [False, False, False, True, False]
    pd.testing.assert_frame_equal(search.front, front)


def test_means_equal_up_to_round_off_are_a_tie():
    frame = pd.DataFrame({"acc": [(0.9 + 0.8) / 2, (0.85 + 0.85) / 2], "spikes": [0.2, 0.2]})
    assert frame["acc"][0] != frame["acc"][1]
    assert non_dominated(frame, [True, False]).tolist() == [True, True]


def test_the_report_lists_and_draws_the_front(search_db, tmp_path):
    from analysis.report import build_report

    page = build_report("sparse", out_dir=tmp_path / "report", db=search_db).read_text()
    section = page.split("search s: Pareto front</h2>", 1)[1].split("</table>", 1)[0]
    assert "3 of 5 completed points, 1 pruned" in section
    assert [name for name in POINTS if f"<td>{name}</td>" in section] == ["s-0", "s-1", "s-2"]
    assert "<th>loss.omega</th>" in section
    assert (tmp_path / "report" / "pareto_s.png").stat().st_size > 0
    assert "pareto_s.png" in page
