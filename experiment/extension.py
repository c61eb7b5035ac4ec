"""``run --set epochs=N --extend``: train completed runs further, as the same runs.

An extension keeps a run's identity (its trial, config hash, seed and folder): the trial keeps
the config it was recorded with, and the run row records the epochs it now trains to
(``run.extended_epochs``). The worker continues it from its last checkpoint (model, optimizer,
scheduler, callbacks and RNG states), so the metric rows after that epoch are appended and a run
extended from 3 to 6 epochs equals a fresh 6-epoch run of the same seed (under a schedule that
does not depend on the epoch count). Everything here is checked before anything is written.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from experiment.identity import first_difference
from experiment.plan import PlannedRun
from experiment.store import ExperimentRecord, RunRecord, RunStatus, TrialRecord
from settings.errors import ConfigError, ConfigIssue
from settings.resolve import Override, ResolvedTrial

EPOCHS = "epochs"


def extension_epochs(overrides: Iterable[Override]) -> int:
    """The ``N`` of ``--set epochs=N``, which ``--extend`` needs (the last one given counts)."""
    found = [o for o in overrides if o.path == EPOCHS]
    if not found:
        raise ConfigError(ConfigIssue("", "needs --set epochs=N: the number of epochs to train the runs to",
                                      "--extend"))
    return int(found[-1].value)  # the schema validated it: an integer >= 0


def run_epochs(run: RunRecord, trial: TrialRecord) -> int:
    """The epochs a run trains to: its extension's, else its trial config's."""
    return run.extended_epochs if run.extended_epochs is not None else int(trial.config[EPOCHS])


def check_extension(experiment: ExperimentRecord | None, recorded: list[TrialRecord], runs: list[RunRecord],
                    trials: Iterable[ResolvedTrial], epochs: int) -> list[ResolvedTrial]:
    """The trials as the version recorded them (their runs keep their identity), after checking
    that each was recorded, differs from its record in ``epochs`` alone, and has no run with more
    epochs than ``epochs``. Raises ConfigError, one line per problem."""
    if experiment is None:
        raise ConfigError(ConfigIssue("", "has no recorded runs to extend: run the experiment first", "--extend"))
    by_name = {t.name: t for t in recorded}
    where = f"experiment {experiment.name!r} version {experiment.version}"
    issues: list[ConfigIssue] = []
    kept: list[ResolvedTrial] = []
    for trial in trials:
        old = by_name.get(trial.name)
        if old is None:
            issues.append(ConfigIssue("", f"trial {trial.name!r} has no runs in {where} to extend; run it "
                                          "without --extend first", "--extend"))
            continue
        change = first_difference({**old.config, EPOCHS: epochs}, trial.config)
        if change:
            issues.append(ConfigIssue("", f"trial {trial.name!r} changed since {where} recorded it ({change}); "
                                          "an extension changes epochs alone", "--extend"))
            continue
        for run in (r for r in runs if r.trial_id == old.id):
            have = run_epochs(run, old)
            if epochs < have:
                issues.append(ConfigIssue("", f"epochs={epochs} is fewer than the {have} that run "
                                              f"{trial.name}/repeat_{run.repeat} already has; an extension only "
                                              "adds epochs", "--extend"))
                break
        kept.append(dataclasses.replace(trial, config=old.config))
    if issues:
        raise ConfigError(issues)
    return kept


def runs_to_extend(pairs: Iterable[tuple[PlannedRun, RunRecord]], epochs: int) -> list[int]:
    """The ids of the runs that train to fewer than ``epochs`` epochs (any state but RUNNING:
    a COMPLETED run continues from its last checkpoint, any other one runs to ``epochs``)."""
    ids = []
    for plan, run in pairs:
        have = run.extended_epochs if run.extended_epochs is not None else int(plan.trial.config[EPOCHS])
        if have < epochs and run.status != RunStatus.RUNNING:
            ids.append(run.id)
    return ids


def task_config(config: dict, run: RunRecord) -> dict:
    """The config a run trains with: its trial's, with the epochs of its extension."""
    return config if run.extended_epochs is None else {**config, EPOCHS: run.extended_epochs}
