"""The median pruner stops a run through the pipeline's stop request."""
from __future__ import annotations

from experiment.search import PruningCallback, optuna_distribution


class FakeTrial:
    def __init__(self, prune_at: int):
        self.prune_at, self.reports = prune_at, []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) >= self.prune_at


class State:
    stop_reason = None

    def request_stop(self, reason):
        self.stop_reason = reason


def test_pruning_callback_reports_val_acc_and_requests_a_stop():
    trial, state = FakeTrial(prune_at=2), State()
    cb = PruningCallback(trial)
    cb.on_epoch_end(state, 0, {"val_acc": 0.1})  # the untrained epoch is not reported
    cb.on_epoch_end(state, 1, {"val_acc": 0.5})
    assert state.stop_reason is None and not cb.pruned
    cb.on_epoch_end(state, 2, {"val_acc": 0.6})
    assert trial.reports == [(1, 0.5), (2, 0.6)] and cb.pruned
    assert state.stop_reason.startswith("pruned by the median pruner at epoch 2")


def test_distributions_map_to_optuna():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    assert optuna_distribution({"loguniform": [1e-4, 1e-1]}) == FloatDistribution(1e-4, 1e-1, log=True)
    assert optuna_distribution({"uniform": [0, 1]}) == FloatDistribution(0.0, 1.0)
    assert optuna_distribution({"randint": [2, 8]}) == IntDistribution(2, 8)
    assert optuna_distribution({"choice": ["soft", "hard"]}) == CategoricalDistribution(["soft", "hard"])
