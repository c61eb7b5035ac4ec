"""The experiment database as pandas frames: experiments, runs, tidy metrics, swept params.

Column names of :func:`load_runs` (one row per run):

- the run: ``run_id, trial, group, repeat, seed, status, started_at, finished_at, duration_s,
  attempts, host, output_dir, error_type, error_message``. ``group`` is the trials.yaml entry a
  sweep point came from (the trial's own name for a trial without a sweep); times are UTC.
- its summary: ``final_val_acc``, ``best_val_acc``, ``best_epoch``, ``epochs``, ``n_params``,
  ``final_spikes_per_sample``, ``spikes_per_sample_at_best``, ``convergence_95``, ... (float, NaN
  when a run has none, e.g. before it completed).
- the trial's params under their dot paths (``optimizer.lr``, ``model.layers[0].kernel.tau_m``,
  ``env.T``). A param whose path is already a column (a config key ``epochs`` next to the summary
  ``epochs``) is named ``param.<path>``; so is one named like a standard summary key, even
  before any run has completed. Numbers are floats; lists and dicts are JSON text.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import pandas as pd

from analysis.source import DB, Experiment, reading, resolve_experiment
from experiment.store import ExperimentRecord, ExperimentStore, RunStatus
from settings.metrics import CONVERGENCE, N_PARAMS, SPIKES_AT_BEST

RUN_COLUMNS = ("run_id", "trial", "group", "repeat", "seed", "status", "started_at", "finished_at", "duration_s",
               "attempts", "host", "output_dir", "error_type", "error_message")
METRIC_COLUMNS = ("run_id", "trial", "group", "repeat", "status", "key", "epoch", "value")
#: The standard summary keys (settings.metrics); a param of the same path is always
#: ``param.<path>``, so that its column name does not depend on whether any run has completed yet.
SUMMARY_KEYS = ("best_epoch", "best_train_acc", "best_val_acc", "epochs", "test_acc_at_best_val", N_PARAMS,
                *SPIKES_AT_BEST.values(), *CONVERGENCE)
PARAM_PREFIX = "param."
COMPLETED = RunStatus.COMPLETED.value


@dataclass(frozen=True)
class RunTable:
    """The :func:`load_runs` frame of one experiment version and what its columns are."""

    experiment: ExperimentRecord
    runs: pd.DataFrame
    summary_columns: list[str]
    param_columns: dict[str, str]  # param path -> column name
    varying: list[str]  # columns of the params whose values differ across trials

    def completed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == COMPLETED]

    def check_columns(self, names: Iterable[str], what: str) -> None:
        """ValueError unless every name is a column, with a "did you mean" and the candidates."""
        columns = list(self.runs.columns)
        missing = [name for name in names if name not in columns]
        if not missing:
            return
        parts = [f"{what} must name columns of load_runs(), got {', '.join(map(repr, missing))}"]
        parts += [f"did you mean {' or '.join(map(repr, close))}?" for name in missing
                  if (close := difflib.get_close_matches(name, columns, n=3, cutoff=0.6))]
        parts.append(f"summaries: {', '.join(self.summary_columns) or 'none'}")
        parts.append(f"swept params: {', '.join(self.varying) or 'none'}")
        raise ValueError("; ".join(parts))


def as_list(names: str | Sequence[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _cell(value: Any) -> Any:
    """JSON params (lists, dicts) as canonical JSON text, so that every column stays hashable."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _param_columns(keys: Iterable[str], taken: set[str]) -> dict[str, str]:
    return {key: PARAM_PREFIX + key if key in taken else key for key in keys}


def run_table(store: ExperimentStore, record: ExperimentRecord) -> RunTable:
    """Every run of ``record`` with its summary and params as columns (see the module docs)."""
    trials = store.trials(record.id)
    summary_rows, param_rows = store.summaries(record.id), store.params(record.id)
    summary_columns = sorted({key for _, key, _ in summary_rows})
    taken = {*RUN_COLUMNS, *SUMMARY_KEYS, *summary_columns}
    param_columns = _param_columns(sorted({key for _, key, _ in param_rows}), taken)
    summaries: dict[int, dict[str, float]] = {}
    for run_id, key, value in summary_rows:
        summaries.setdefault(run_id, {})[key] = value
    settings: dict[int, dict[str, Any]] = {}
    for trial_id, key, value in param_rows:
        settings.setdefault(trial_id, {})[param_columns[key]] = _cell(value)
    by_id = {trial.id: trial for trial in trials}
    rows = []
    for run in store.runs(record.id):
        trial = by_id[run.trial_id]
        rows.append({"run_id": run.id, "trial": trial.name, "group": trial.group_name or trial.name,
                     "repeat": run.repeat, "seed": run.seed, "status": run.status.value,
                     "started_at": run.started_at, "finished_at": run.finished_at, "duration_s": run.duration_s,
                     "attempts": run.attempts, "host": run.host, "output_dir": run.output_dir,
                     "error_type": run.error_type, "error_message": run.error_message,
                     **summaries.get(run.id, {}), **settings.get(run.trial_id, {})})
    runs = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *summary_columns, *param_columns.values()])
    for column in ("started_at", "finished_at"):
        runs[column] = pd.to_datetime(runs[column], utc=True)
    runs = runs.astype({"run_id": "int64", "repeat": "int64", "seed": "int64", "attempts": "int64",
                        "duration_s": float})
    if summary_columns:
        runs[summary_columns] = runs[summary_columns].astype(float)
    per_trial = pd.DataFrame([settings.get(trial.id, {}) for trial in trials], columns=list(param_columns.values()))
    differing = [column for column in per_trial.columns if per_trial[column].nunique(dropna=False) > 1]
    swept = [param_columns[key] for trial in trials for key in (trial.sweep_point or {}) if key in param_columns]
    first = [column for column in dict.fromkeys(swept) if column in differing]
    varying = first + [column for column in differing if column not in first]
    return RunTable(record, runs, summary_columns, param_columns, varying)


def read_run_table(experiment: Experiment, db: DB = None, version: int | None = None) -> RunTable:
    with reading(db) as store:
        return run_table(store, resolve_experiment(store, experiment, version))


def load_experiments(db: DB = None) -> pd.DataFrame:
    """One row per experiment version: ``id, name, version, desc, created_at, config_dir,
    n_trials, n_runs`` and the number of runs in each state (``pending, running, completed,
    failed, interrupted, stale``)."""
    states = [status.value for status in RunStatus]
    rows = []
    with reading(db) as store:
        for experiment in store.list_experiments():
            counts = dict.fromkeys(states, 0)
            for per_state in store.status_counts(experiment.id).values():
                for state, n in per_state.items():
                    counts[state] = counts.get(state, 0) + n
            rows.append({"id": experiment.id, "name": experiment.name, "version": experiment.version,
                         "desc": experiment.desc, "created_at": experiment.created_at,
                         "config_dir": experiment.config_dir, "n_trials": len(store.trials(experiment.id)),
                         "n_runs": sum(counts.values()), **{state.lower(): n for state, n in counts.items()}})
    columns = ["id", "name", "version", "desc", "created_at", "config_dir", "n_trials", "n_runs",
               *(state.lower() for state in states)]
    return pd.DataFrame(rows, columns=columns)


def load_runs(experiment: Experiment, db: DB = None, version: int | None = None) -> pd.DataFrame:
    """One row per run of the experiment (by run id): the run, its summary values and its
    trial's params as columns; see the module docs for the column names."""
    return read_run_table(experiment, db, version).runs


def load_metrics(experiment: Experiment, keys: str | Sequence[str] | None = None, db: DB = None,
                 version: int | None = None) -> pd.DataFrame:
    """The per-epoch metrics as a tidy long frame ``run_id, trial, group, repeat, status, key,
    epoch, value``, ordered by run, key and epoch; ``keys`` selects metric names (all if None).
    Runs of every state are included: filter on ``status`` for completed runs only."""
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        rows = store.metrics(record.id, keys=None if keys is None else as_list(keys))
        trials = {trial.id: trial for trial in store.trials(record.id)}
        runs = {run.id: (trials[run.trial_id], run) for run in store.runs(record.id)}
    frame = pd.DataFrame(rows, columns=["run_id", "key", "epoch", "value"])
    frame["value"] = frame["value"].astype(float)
    ids = frame["run_id"]
    frame["trial"] = ids.map({i: trial.name for i, (trial, _) in runs.items()})
    frame["group"] = ids.map({i: trial.group_name or trial.name for i, (trial, _) in runs.items()})
    frame["repeat"] = ids.map({i: run.repeat for i, (_, run) in runs.items()})
    frame["status"] = ids.map({i: run.status.value for i, (_, run) in runs.items()})
    return frame[list(METRIC_COLUMNS)]


def varying_params(experiment: Experiment, db: DB = None, version: int | None = None) -> list[str]:
    """The param columns of :func:`load_runs` whose values differ across the experiment's trials
    (what a sweep varies): swept paths first, in sweep order, then the others by name."""
    return read_run_table(experiment, db, version).varying


def top_runs(experiment: Experiment, metric: str = "final_val_acc", n: int = 10, ascending: bool = False,
             db: DB = None, version: int | None = None) -> pd.DataFrame:
    """The ``n`` best COMPLETED runs by ``metric`` (largest first unless ``ascending``; NaN
    last): ``run_id, trial, repeat, seed, <metric>, <swept params>, duration_s, output_dir``."""
    table = read_run_table(experiment, db, version)
    table.check_columns([metric], "`metric`")
    columns = list(dict.fromkeys(["run_id", "trial", "repeat", "seed", metric, *table.varying, "duration_s",
                                  "output_dir"]))
    best = table.completed().sort_values(metric, ascending=ascending, kind="stable", na_position="last")
    return best.head(n)[columns].reset_index(drop=True)
