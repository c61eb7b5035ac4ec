"""Model-based search (Optuna TPE) whose every sampled point is a trial of our database.

Optuna only samples: each point it asks for becomes a trial (``<entry>-<k>``) with its repeats
as runs, executed by the session's executor like any other run; the objective values it is told
are summary metrics averaged over the point's COMPLETED repeats. A later ``run`` of the same
experiment rebuilds the study from the database (every finished point is added back) and only
asks for the points still missing, so a search resumes like everything else.

Pruning (``pruner: median``) reports ``val_acc`` every epoch and stops unpromising points early;
it needs the run in this process, so it applies with the inline executor and one objective.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from experiment.executors import Executor, InlineExecutor
from experiment.worker import RunTask
from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.experiment_files import TrialSettings
from settings.metrics import VAL_ACC
from settings.sweep import search_objectives, search_seed


def optuna_distribution(spec: dict) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    (kind, args), = spec.items()
    if kind == "uniform":
        return FloatDistribution(float(args[0]), float(args[1]))
    if kind == "loguniform":
        return FloatDistribution(float(args[0]), float(args[1]), log=True)
    if kind == "randint":
        return IntDistribution(int(args[0]), int(args[1]))
    return CategoricalDistribution(list(args))


class PruningCallback(Callback):
    """Reports ``monitor`` to the Optuna trial every epoch; stops the run when it should be pruned."""

    order = 15

    def __init__(self, trial: Any, monitor: str = VAL_ACC):
        self.trial, self.monitor, self.pruned = trial, monitor, False

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        value = metrics.get(self.monitor)
        if value is None or math.isnan(value) or epoch == 0:
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = True
            state.request_stop(f"pruned by the median pruner at epoch {epoch} ({self.monitor} {value:.4g})")


def run_search(entry: TrialSettings, session: Any, executor: Executor,
               make_tasks: Callable[[list[Any]], list[RunTask]]) -> Any:
    """Ask, run and tell until the entry has ``n_trials`` finished points; returns the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = entry.search
    objectives = search_objectives(search)
    distributions = {key: optuna_distribution(spec) for key, spec in search["params"].items()}
    seed = int(search_seed(search.get("seed", session.root_seed), entry.name).generate_state(1)[0])
    single = len(objectives) == 1
    prune = single and search.get("pruner", "none") == "median" and isinstance(executor, InlineExecutor)
    study = optuna.create_study(
        directions=[o.get("direction", "maximize") for o in objectives],
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, search["n_trials"] // 3))),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if prune else optuna.pruners.NopPruner())
    done = session.finished_points(entry.name)  # trial name -> (params, values or None)
    for name, (params, values) in done.items():
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions,
            values=values, state=optuna.trial.TrialState.COMPLETE if values else optuna.trial.TrialState.FAIL))
    index = len(done)
    width = len(str(search["n_trials"] - 1))
    while index < search["n_trials"]:
        batch = min(executor.n_jobs, search["n_trials"] - index)
        asked = []
        for _ in range(batch):
            trial = study.ask(distributions)
            name = f"{entry.name}-{index:0{width}d}"
            index += 1
            resolved = session.add_search_point(entry, name, dict(trial.params))
            asked.append((trial, resolved))
        tasks = make_tasks([resolved for _, resolved in asked])
        pruners = {resolved.name: PruningCallback(trial) for trial, resolved in asked} if prune else {}
        session.extra_callbacks = pruners
        session.execute(tasks)
        session.extra_callbacks = {}
        for trial, resolved in asked:
            values = session.objective_values(resolved.name, objectives)
            if resolved.name in pruners and pruners[resolved.name].pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif values is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, values if not single else values[0])
    return study
