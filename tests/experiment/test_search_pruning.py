"""The median pruner stops a run through the pipeline's stop request; distributions map to Optuna's."""
from __future__ import annotations

from experiment.search import PruningCallback, optuna_distribution


class State:
    stop_reason = None

    def __init__(self, epochs: int = 10):
        self.history, self.summary, self.epochs = [], {}, epochs

    def request_stop(self, reason):
        self.stop_reason = reason


def test_pruning_callback_stops_a_run_below_the_median_of_earlier_runs():
    import optuna

    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    for steps in ({1: 0.5, 2: 0.7}, {1: 0.3, 2: 0.5}):  # two earlier runs; medians 0.4 at epoch 1, 0.6 at epoch 2
        study.add_trial(optuna.trial.create_trial(value=steps[2], intermediate_values=steps))
    trial_state, cb = State(), PruningCallback(study, "val_acc")
    cb.on_fit_start(trial_state)
    cb.on_epoch_end(trial_state, 0, {"val_acc": 0.1})  # the untrained epoch is not reported
    cb.on_epoch_end(trial_state, 1, {"val_acc": 0.45})  # above the median 0.4 of epoch 1
    assert trial_state.stop_reason is None and not cb.pruned
    cb.on_epoch_end(trial_state, 2, {"val_acc": 0.55})  # below the median 0.6 of epoch 2
    assert cb.pruned and trial_state.stop_reason.startswith("pruned by the median pruner at epoch 2")
    cb.on_fit_end(trial_state)
    assert trial_state.summary == {"pruned_at_epoch": 2.0}
    last = study.trials[-1]
    assert last.state == optuna.trial.TrialState.PRUNED and last.intermediate_values == {1: 0.45, 2: 0.55}


def test_distributions_map_to_optuna():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    assert optuna_distribution({"loguniform": [1e-4, 1e-1]}) == FloatDistribution(1e-4, 1e-1, log=True)
    assert optuna_distribution({"uniform": [0, 1]}) == FloatDistribution(0.0, 1.0)
    assert optuna_distribution({"randint": [2, 8]}) == IntDistribution(2, 8)
    assert optuna_distribution({"choice": ["soft", "hard"]}) == CategoricalDistribution(["soft", "hard"])


def test_the_pruning_study_is_rebuilt_from_the_database_with_its_settings():
    import optuna
    from types import SimpleNamespace

    from experiment.search import pruning_study
    from experiment.store import RunStatus

    trials = [SimpleNamespace(id=1, group_name="s"), SimpleNamespace(id=2, group_name="s"),
              SimpleNamespace(id=3, group_name="other")]
    runs = [SimpleNamespace(id=10, trial_id=1), SimpleNamespace(id=11, trial_id=2), SimpleNamespace(id=12, trial_id=3)]
    metrics = [(10, "val_acc", 0, 0.1), (10, "val_acc", 1, 0.5), (10, "val_acc", 2, 0.7), (10, "val_acc", 3, 0.8),
               (11, "val_acc", 0, 0.1), (11, "val_acc", 1, 0.3), (11, "val_acc", 2, 0.5),
               (12, "val_acc", 1, 0.9)]  # another entry's run: not part of this search
    store = SimpleNamespace(trials=lambda e: trials, runs=lambda e, states: runs if states == [RunStatus.COMPLETED] else [],
                            summaries=lambda e: [(11, "pruned_at_epoch", 2.0)],
                            metrics=lambda e, keys: [m for m in metrics if m[1] in keys])
    session = SimpleNamespace(store=store, experiment=SimpleNamespace(id=1))
    study = pruning_study(session, "s", "val_acc", "maximize", {"startup_runs": 1, "warmup_epochs": 2})
    done, stopped = study.trials
    assert done.state == optuna.trial.TrialState.COMPLETE and done.value == 0.8
    assert done.intermediate_values == {1: 0.5, 2: 0.7, 3: 0.8}  # epoch 0 (untrained) is left out
    assert stopped.state == optuna.trial.TrialState.PRUNED and stopped.intermediate_values == {1: 0.3, 2: 0.5}
    state, cb = State(), PruningCallback(study, "val_acc")
    cb.on_fit_start(state)
    cb.on_epoch_end(state, 1, {"val_acc": 0.2})  # below the completed run's 0.5, but epoch 1 < warmup_epochs 2
    assert not cb.pruned
    cb.on_epoch_end(state, 2, {"val_acc": 0.6})  # below 0.7: one completed run is enough (startup_runs 1)
    assert cb.pruned


def test_a_run_is_not_stopped_after_its_last_epoch():
    import optuna

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(optuna.trial.create_trial(value=0.9, intermediate_values={1: 0.8, 2: 0.9}))
    state, cb = State(epochs=2), PruningCallback(study, "val_acc")
    cb.on_fit_start(state)
    cb.on_epoch_end(state, 1, {"val_acc": 0.85})
    cb.on_epoch_end(state, 2, {"val_acc": 0.5})  # below the median, but the run has trained in full
    state.history = [{"epoch": 1, "val_acc": 0.85}, {"epoch": 2, "val_acc": 0.5}]
    cb.on_fit_end(state)
    assert not cb.pruned and state.stop_reason is None and state.summary == {}
    assert study.trials[-1].state == optuna.trial.TrialState.COMPLETE and study.trials[-1].value == 0.5
