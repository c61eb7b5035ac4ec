"""Model-based search (Optuna TPE or NSGA-II) whose every sampled point is a trial of our database.

Optuna only samples: each point it asks for becomes a trial (``<entry>-<k>``) with its repeats
as runs, executed by the session's executor like any other run; the objective values it is told
are summary metrics averaged over the point's COMPLETED repeats. One objective or several (a
multi-objective study: TPE's multi-objective mode or NSGA-II). A later ``run`` of the same
experiment rebuilds the study from the database (every finished point is added back; NSGA-II's
generations are renumbered from the completed points in the order they were sampled) and only
asks for the points still missing, so a search resumes like everything else. The sampler is
seeded afresh for each point from the search seed and the point's index, so the point asked
k-th depends on the seed and the points before it, not on whether the search was interrupted.

Pruning (``pruner: median``) follows the first objective's per-epoch metric (``best_val_acc``:
``val_acc`` every epoch). Optuna refuses ``report``/``should_prune`` in a multi-objective study,
so the pruner lives in a companion single-objective study with one trial per run: a run is
stopped after an epoch where its value is worse than the median of the earlier completed runs
at that epoch (Optuna's MedianPruner, with the ``startup_runs`` and ``warmup_epochs`` of
settings.sweep.median_pruner). A stopped run is COMPLETED with ``pruned_at_epoch`` in its
summary; its point is told PRUNED and stays off the Pareto front. Pruning needs the runs in this
process: the inline executor (another executor is refused before anything runs).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np

from experiment.executors import Executor, InlineExecutor
from experiment.store import RunStatus
from experiment.worker import RunTask
from pipeline.callbacks.base import Callback
from pipeline.state import FitState
from settings.errors import ConfigError, ConfigIssue
from settings.experiment_files import TrialSettings
from settings.sweep import (PRUNED_AT_EPOCH, median_pruner, population_size, pruning_monitor, search_objectives,
                            search_seed)


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


def make_sampler(search: dict, seed: int) -> Any:
    """The Optuna sampler of ``search['method']``: ``tpe`` (one or several objectives) or ``nsga2``."""
    import optuna

    if search.get("method") == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population_size(search), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, search["n_trials"] // 3)))


def point_seed(base: int, index: int) -> int:
    """The sampler seed of the ``index``-th point of a search seeded with ``base``."""
    return int(np.random.SeedSequence([base, index]).generate_state(1)[0])


def check_pruning(searches: list[TrialSettings], executor: Executor) -> None:
    """``pruner: median`` needs every run in this process; refused (before anything runs) otherwise."""
    for entry in searches:
        if median_pruner(entry.search) is not None and not isinstance(executor, InlineExecutor):
            raise ConfigError(ConfigIssue("search.pruner", f"median needs the inline executor (it stops runs while "
                                                           f"they train), got {executor.name}; set pruner: none or "
                                                           f"executor: {{backend: inline}}",
                                          f"trials.yaml ({entry.name})"))


class PruningCallback(Callback):
    """Each run it watches is a trial of the single-objective ``study`` (whose pruner decides):
    reports ``monitor`` every epoch after epoch 0 and stops the run when it should be pruned
    (before its last epoch), recording ``pruned_at_epoch`` in the run's summary."""

    order = 15

    def __init__(self, study: Any, monitor: str):
        self.study, self.monitor = study, monitor
        self.trial, self.stopped_at, self.pruned = None, None, False

    def _report(self, epoch: int, metrics: dict[str, float]) -> bool:
        value = metrics.get(self.monitor)
        if value is None or math.isnan(value) or epoch == 0:
            return False
        self.trial.report(float(value), int(epoch))
        return True

    def on_fit_start(self, state: FitState) -> None:
        self.trial, self.stopped_at = self.study.ask(), None
        for row in state.history:  # a resumed run: the epochs it trained before
            self._report(int(row["epoch"]), row)

    def on_epoch_end(self, state: FitState, epoch: int, metrics: dict[str, float]) -> None:
        # reported every epoch; never stopped after its last one, since it has trained in full then
        if self._report(epoch, metrics) and epoch < state.epochs and self.trial.should_prune():
            self.stopped_at, self.pruned = epoch, True
            state.request_stop(f"pruned by the median pruner at epoch {epoch} ({self.monitor} "
                               f"{metrics[self.monitor]:.4g})")

    def on_fit_end(self, state: FitState) -> None:
        import optuna

        last = self._last(state)
        if self.stopped_at is not None:
            state.summary[PRUNED_AT_EPOCH] = float(self.stopped_at)
            self.study.tell(self.trial, state=optuna.trial.TrialState.PRUNED)
        elif last is not None:
            self.study.tell(self.trial, last)
        else:
            self.study.tell(self.trial, state=optuna.trial.TrialState.FAIL)

    def on_exception(self, state: FitState, exc: BaseException) -> None:
        import optuna

        if self.trial is not None:
            self.study.tell(self.trial, state=optuna.trial.TrialState.FAIL)

    def _last(self, state: FitState) -> float | None:
        values = [row[self.monitor] for row in state.history if not math.isnan(row.get(self.monitor, math.nan))]
        return float(values[-1]) if values else None


def pruning_study(session: Any, group: str, monitor: str, direction: str, settings: dict) -> Any:
    """The companion study of the median pruner (``settings``: startup_runs, warmup_epochs),
    holding every finished run of the search's points (its ``monitor`` per epoch; PRUNED where
    the run was stopped)."""
    import optuna

    study = optuna.create_study(direction=direction, pruner=optuna.pruners.MedianPruner(
        n_startup_trials=settings["startup_runs"], n_warmup_steps=settings["warmup_epochs"]))
    store, experiment_id = session.store, session.experiment.id
    trials = {t.id for t in store.trials(experiment_id) if t.group_name == group}
    runs = [r.id for r in store.runs(experiment_id, [RunStatus.COMPLETED]) if r.trial_id in trials]
    pruned = {run_id for run_id, key, _ in store.summaries(experiment_id) if key == PRUNED_AT_EPOCH}
    series: dict[int, dict[int, float]] = {run_id: {} for run_id in runs}
    for row in store.metrics(experiment_id, [monitor]):
        run_id, epoch, value = row[0], row[2], row[3]
        if run_id in series and epoch > 0 and not math.isnan(value):
            series[run_id][int(epoch)] = float(value)
    for run_id in runs:
        steps = series[run_id]
        if not steps:
            continue
        done = run_id not in pruned
        study.add_trial(optuna.trial.create_trial(
            value=steps[max(steps)] if done else None, intermediate_values=steps,
            state=optuna.trial.TrialState.COMPLETE if done else optuna.trial.TrialState.PRUNED))
    return study


def pruned_points(session: Any, group: str) -> set[str]:
    """The points of search ``group`` with a run the median pruner stopped."""
    store, experiment_id = session.store, session.experiment.id
    pruned = {run_id for run_id, key, _ in store.summaries(experiment_id) if key == PRUNED_AT_EPOCH}
    return {r.trial_name for r in store.runs(experiment_id) if r.id in pruned}


def rebuild_trial(params: dict, distributions: dict, values: list[float] | None, pruned: bool,
                  generation: int | None, generation_key: str | None) -> Any:
    """A finished point as an Optuna trial; NSGA-II's generation in its system attributes."""
    import optuna

    state = optuna.trial.TrialState
    attrs = {generation_key: generation} if generation_key is not None and generation is not None else {}
    if pruned:
        return optuna.trial.create_trial(params=params, distributions=distributions, state=state.PRUNED,
                                         system_attrs=attrs)
    if values is None:
        return optuna.trial.create_trial(params=params, distributions=distributions, state=state.FAIL)
    return optuna.trial.create_trial(params=params, distributions=distributions, values=values,
                                     state=state.COMPLETE, system_attrs=attrs)


def shared_outcome(outcomes: dict, params: dict, values: list[float] | None,
                   pruned: bool) -> tuple[list[float] | None, bool]:
    """A point's objective values and pruned flag; a point sampled again (NSGA-II's crossover can
    repeat a parent) has no runs of its own, since runs are keyed by config, and takes those of
    the first point with its params. ``outcomes`` (params -> first outcome) is updated."""
    key = json.dumps(params, sort_keys=True, default=str)
    if values is None and not pruned and key in outcomes:
        return outcomes[key]
    if values is not None or pruned:
        outcomes.setdefault(key, (values, pruned))
    return values, pruned


def run_search(entry: TrialSettings, session: Any, executor: Executor,
               make_tasks: Callable[[list[Any]], list[RunTask]]) -> Any:
    """Ask, run and tell until the entry has ``n_trials`` finished points; returns the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = entry.search
    objectives = search_objectives(search)
    distributions = {key: optuna_distribution(spec) for key, spec in search["params"].items()}
    base_seed = int(search_seed(search.get("seed", session.root_seed), entry.name).generate_state(1)[0])
    single = len(objectives) == 1
    monitor = pruning_monitor(objectives[0])
    pruner = median_pruner(search)  # check_pruning: the executor is inline when there is one
    prune = pruner is not None
    study = optuna.create_study(directions=[o.get("direction", "maximize") for o in objectives],
                                sampler=make_sampler(search, base_seed))
    nsga2 = search.get("method") == "nsga2"
    generation_key = optuna.samplers.NSGAIISampler._get_generation_key() if nsga2 else None
    size = population_size(search) if nsga2 else 1
    done = session.finished_points(entry.name)  # trial name -> (params, values or None), in sampling order
    stopped = pruned_points(session, entry.name)
    outcomes: dict[str, tuple[list[float] | None, bool]] = {}  # params -> (values, pruned) of its first point
    completed = 0
    for name, (params, values) in done.items():
        values, pruned = shared_outcome(outcomes, params, values, name in stopped)
        study.add_trial(rebuild_trial(params, distributions, values, pruned,
                                      completed // size if nsga2 else None, generation_key))
        completed += int(values is not None and not pruned)
    if nsga2 and completed >= size and completed % size:
        # mid-generation: an uninterrupted search has cached this generation's parents (in the
        # order of their trial ids) when it sampled the generation's first point; cache them alike
        study.sampler.get_parent_population(study, completed // size)
    companion = pruning_study(session, entry.name, monitor, objectives[0].get("direction", "maximize"), pruner) \
        if prune else None
    index = len(done)
    width = len(str(search["n_trials"] - 1))
    while index < search["n_trials"]:
        batch = min(executor.n_jobs, search["n_trials"] - index)
        asked = []
        for _ in range(batch):
            study.sampler = make_sampler(search, point_seed(base_seed, index))
            trial = study.ask(distributions)
            name = f"{entry.name}-{index:0{width}d}"
            index += 1
            resolved = session.add_search_point(entry, name, dict(trial.params))
            asked.append((trial, resolved))
        tasks = make_tasks([resolved for _, resolved in asked])
        pruners = {resolved.name: PruningCallback(companion, monitor) for _, resolved in asked} if prune else {}
        session.extra_callbacks = pruners
        session.execute(tasks)
        session.extra_callbacks = {}
        for trial, resolved in asked:
            pruned = resolved.name in pruners and pruners[resolved.name].pruned
            values, pruned = shared_outcome(outcomes, dict(trial.params),
                                            session.objective_values(resolved.name, objectives), pruned)
            if pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif values is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, values if not single else values[0])
    return study
