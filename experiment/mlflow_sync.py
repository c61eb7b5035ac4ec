"""The MLflow mirror rebuilt from the experiment database: ``python main.py mlflow-sync EXPERIMENT``.

The database is the truth; MLflow is made to agree with it, whatever state the mirror is in
(complete, partly written by a session that was killed, or deleted):

- one parent run per trial (params = the resolved config, ``spikelab.config_hash`` = the
  database's hash), one child run per run that has started, found again by the tag
  ``spikelab.run_id``; what is missing is created, with the database's start and end times;
- every metric row of a run as a point of its child (step = epoch), its summary as
  ``summary.<key>`` metrics, its status (COMPLETED -> FINISHED, FAILED -> FAILED,
  INTERRUPTED and STALE -> KILLED), its files as artifacts (experiment.mlflow_mirror.run_artifacts);
- each parent: the means over its COMPLETED repeats (``summary.<key>`` at step n = the number of
  repeats averaged, and each epoch's metrics at step = epoch), ``spikelab.repeats`` ("2 of 2
  completed"), and the span of its repeats as start and end;
- children and parents the database does not know (a trial whose config changed, a deleted
  run) are deleted (MLflow's soft delete).

Only what differs is written, so a second sync writes nothing (idempotent). ``run`` calls
:func:`update_parents` when its runs are done. mlflow is imported inside functions only.
"""
from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from experiment.mlflow_mirror import (CONFIG_HASH_TAG, KIND_TAG, PARENT_TAG, RUN_ID_TAG, TRIAL_TAG, _client,
                                      _ensure_experiment, _log_batch, _search_runs, ensure_parent_runs,
                                      log_run_artifacts, mlflow_key, mlflow_params, mlflow_ui_command,
                                      tracking_lock)
from experiment.store import ExperimentRecord, RunRecord, RunStatus, SQLStore

MLFLOW_STATUS = {RunStatus.COMPLETED: "FINISHED", RunStatus.FAILED: "FAILED", RunStatus.INTERRUPTED: "KILLED",
                 RunStatus.STALE: "KILLED", RunStatus.RUNNING: "RUNNING"}
SUMMARY_PREFIX = "summary."
START_TOLERANCE_MS = 1000  # a parent starting this close to its first repeat keeps its run


@dataclass
class SyncCounts:
    """What one sync wrote (all zero when the mirror already agreed with the database)."""

    parents_created: int = 0
    children_created: int = 0
    metric_points: int = 0
    artifacts: int = 0
    runs_deleted: int = 0
    statuses: int = 0
    missing_folders: list[str] = field(default_factory=list)

    @property
    def wrote(self) -> bool:
        return bool(self.parents_created or self.children_created or self.metric_points or self.artifacts
                    or self.runs_deleted or self.statuses)


def mlflow_experiment_name(experiment: ExperimentRecord) -> str:
    """The MLflow experiment of a database experiment version (``name``, ``name_v2``, ...)."""
    return experiment.name if experiment.version == 1 else f"{experiment.name}_v{experiment.version}"


def default_tracking_uri(experiment: ExperimentRecord) -> str:
    """The tracking URI ``run`` mirrored ``experiment`` into: its experiment.yaml's
    ``mlflow.tracking_uri``, else ``sqlite:///<base_dir>/mlflow.db`` (as recorded)."""
    settings = (experiment.files or {}).get("experiment") or {}
    uri = (settings.get("mlflow") or {}).get("tracking_uri")
    return uri or f"sqlite:///{Path(settings.get('base_dir') or 'outputs') / 'mlflow.db'}"


def sync_experiment(store: SQLStore, experiment: ExperimentRecord, tracking_uri: str,
                    artifacts: bool = True) -> SyncCounts:
    """Make the MLflow mirror of ``experiment`` agree with the database (see the module docstring)."""
    counts = SyncCounts()
    name = mlflow_experiment_name(experiment)
    trials = store.trials(experiment.id)
    runs = store.runs(experiment.id)
    starts = {run.id: _first_start(store, run) for run in runs}
    trial_starts: dict[str, int] = {}
    for run in runs:
        if starts[run.id] is not None:
            trial_starts[run.trial_name] = min(trial_starts.get(run.trial_name, starts[run.id]), starts[run.id])
    with tracking_lock(tracking_uri):
        client = _client(tracking_uri)
        experiment_id = _ensure_experiment(client, tracking_uri, name, None)
    before = {r.info.run_id for r in _search_runs(client, experiment_id, f"tags.`{KIND_TAG}` = 'trial'")}
    parents = ensure_parent_runs(tracking_uri, name, {t.name: t.config for t in trials},
                                 {t.name: t.config_hash for t in trials}, experiment.desc or None, trial_starts)
    counts.parents_created = len(set(parents.values()) - before)
    counts.runs_deleted += _delete_unknown_parents(client, experiment_id, set(parents.values()))

    children: dict[str, list[Any]] = defaultdict(list)
    for child in _search_runs(client, experiment_id, f"tags.`{KIND_TAG}` = 'repeat'"):
        children[child.data.tags.get(RUN_ID_TAG, "")].append(child)
    known = {str(run.id) for run in runs}
    for run_id, found in children.items():
        stale = found[1:] if run_id in known else found  # duplicates, and runs the database does not have
        for child in stale:
            client.delete_run(child.info.run_id)
            counts.runs_deleted += 1

    configs = {t.id: t.config for t in trials}
    metrics = _metrics_by_run(store, experiment.id)
    summaries = _summaries_by_run(store, experiment.id)
    for run in runs:
        if starts[run.id] is None:  # PENDING: never started, nothing to mirror yet
            continue
        existing = children.get(str(run.id), [None])[0]
        if existing is not None and existing.data.tags.get(PARENT_TAG) != parents[run.trial_name]:
            client.set_tag(existing.info.run_id, PARENT_TAG, parents[run.trial_name])
        child = existing or _create_child(client, experiment_id, parents[run.trial_name], run, starts[run.id])
        counts.children_created += existing is None
        _fill_params(client, child, mlflow_params(configs[run.trial_id]))
        history = metrics.get(run.id, {})
        last = run.last_epoch if run.last_epoch is not None else \
            max((e for steps in history.values() for e in steps), default=0)
        points = {**history, **{f"{SUMMARY_PREFIX}{k}": {last: v} for k, v in summaries.get(run.id, {}).items()}}
        counts.metric_points += _log_points(client, child, points)
        counts.statuses += _fill_status(client, child, run)
        if artifacts and run.status == RunStatus.COMPLETED:
            if Path(run.output_dir).is_dir():
                counts.artifacts += log_run_artifacts(client, child.info.run_id, run.output_dir,
                                                      skip=_artifact_paths(client, child.info.run_id))
            else:
                counts.missing_folders.append(run.output_dir)
    parent_counts = update_parents(store, experiment, tracking_uri, parents, client=client)
    counts.metric_points += parent_counts.metric_points
    counts.statuses += parent_counts.statuses
    return counts


def update_parents(store: SQLStore, experiment: ExperimentRecord, tracking_uri: str, parents: dict[str, str],
                   client: Any = None) -> SyncCounts:
    """Each parent run of ``parents`` (trial name -> MLflow run id) from the database: the means
    over the trial's COMPLETED repeats, ``spikelab.repeats``, its status (FINISHED when every
    repeat completed, FAILED when one failed and none is left to run, KILLED when one was
    interrupted, RUNNING while one is pending or running) and the span of its repeats: the start
    of the first, the end of the last. MLflow cannot change a run's start, so a finished trial
    whose parent started more than a second away from its first repeat (``run`` creates parents
    before any repeat starts) gets a new parent with the right start: its children move there,
    the old one is deleted and ``parents`` is updated in place."""
    client = client or _client(tracking_uri)
    counts = SyncCounts()
    if not parents:
        return counts
    runs = [r for r in store.runs(experiment.id) if r.trial_name in parents]
    summaries = _summaries_by_run(store, experiment.id)
    completed = [r for r in runs if r.status == RunStatus.COMPLETED]
    metrics = _metrics_by_run(store, experiment.id, [r.id for r in completed]) if completed else {}
    for trial, parent_id in list(parents.items()):
        mine = [r for r in runs if r.trial_name == trial]
        done = [r for r in mine if r.status == RunStatus.COMPLETED]
        parent = client.get_run(parent_id)
        status = _trial_status(mine)
        starts = [start for start in (_first_start(store, r) for r in mine) if start is not None]
        if status != "RUNNING" and starts and abs(parent.info.start_time - min(starts)) > START_TOLERANCE_MS:
            parent = _restart_parent(client, parent, min(starts))
            parent_id = parents[trial] = parent.info.run_id
            counts.parents_created += 1
        points = {f"{SUMMARY_PREFIX}{key}": {len(done): value}
                  for key, value in _means([summaries.get(r.id, {}) for r in done]).items()}
        points.update(_epoch_means([metrics.get(r.id, {}) for r in done]))
        counts.metric_points += _log_points(client, parent, points)
        tags = {"spikelab.repeats": f"{len(done)} of {len(mine)} completed"}
        if any(parent.data.tags.get(k) != v for k, v in tags.items()):
            _log_batch(client, parent_id, tags=tags)
        ends = [_ms(r.finished_at) for r in mine if r.finished_at is not None]
        end = max(ends) if ends and status != "RUNNING" else None
        if status != parent.info.status or (end is not None and parent.info.end_time != end):
            if status == "RUNNING":
                client.update_run(parent_id, status="RUNNING")
            else:
                client.set_terminated(parent_id, status, end_time=end)
            counts.statuses += 1
    return counts


def _restart_parent(client: Any, old: Any, start_ms: int) -> Any:
    """A copy of the parent run ``old`` (name, spikelab tags, its own parent: a staged trial's
    group, params) that starts at ``start_ms``, its children moved to it; ``old`` is deleted.
    Metrics are logged afresh by the caller."""
    tags = {k: v for k, v in old.data.tags.items() if not k.startswith("mlflow.") or k == PARENT_TAG}
    new = client.create_run(old.info.experiment_id, run_name=old.info.run_name, start_time=start_ms, tags=tags)
    _log_batch(client, new.info.run_id, params=dict(old.data.params))
    for child in _search_runs(client, old.info.experiment_id, f"tags.`{PARENT_TAG}` = '{old.info.run_id}'"):
        client.set_tag(child.info.run_id, PARENT_TAG, new.info.run_id)
    client.delete_run(old.info.run_id)
    return client.get_run(new.info.run_id)


def cmd_mlflow_sync(name: str, db: str | None, version: int | None = None, tracking_uri: str | None = None,
                    artifacts: bool = True, out: TextIO | None = None) -> int:
    """``python main.py mlflow-sync EXPERIMENT``: rebuild the mirror, print what was written."""
    import logging

    from experiment.store import find_experiment, open_readonly

    import mlflow  # noqa: F401  (configures its loggers on import: quieten them afterwards)

    out = out or sys.stdout
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no schema-migration chatter
    store = open_readonly(db)
    try:
        record = find_experiment(store, name, version)
        uri = tracking_uri or default_tracking_uri(record)
        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///"):].split("?", 1)[0]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        counts = sync_experiment(store, record, uri, artifacts)
    finally:
        store.close()
    what = (f"{counts.parents_created} parent run(s) and {counts.children_created} child run(s) created, "
            f"{counts.metric_points} metric point(s), {counts.artifacts} artifact(s), {counts.statuses} status(es) "
            f"written, {counts.runs_deleted} run(s) deleted") if counts.wrote else "already in sync: nothing written"
    print(f"MLflow experiment {mlflow_experiment_name(record)} in {uri}: {what}", file=out)
    for folder in counts.missing_folders:
        print(f"  no run folder at {folder}: its files were not logged", file=out)
    print(f"MLflow:      {mlflow_ui_command(uri)}", file=out)
    return 0


# --- helpers ---------------------------------------------------------------------------------
def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a database time (naive times are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _first_start(store: SQLStore, run: RunRecord) -> int | None:
    """When the run's first attempt started (ms), None for a run that never started."""
    attempts = store.attempts(run.id)
    if attempts:
        return _ms(attempts[0].started_at)
    return None if run.started_at is None else _ms(run.started_at)


def _metrics_by_run(store: SQLStore, experiment_id: int, run_ids: list[int] | None = None
                    ) -> dict[int, dict[str, dict[int, float]]]:
    """run id -> metric key -> epoch -> value."""
    rows: dict[int, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for run_id, key, epoch, value in store.metrics(experiment_id, run_ids=run_ids):
        rows[run_id][key][int(epoch)] = value
    return rows


def _summaries_by_run(store: SQLStore, experiment_id: int) -> dict[int, dict[str, float]]:
    found: dict[int, dict[str, float]] = defaultdict(dict)
    for run_id, key, value in store.summaries(experiment_id):
        found[run_id][key] = value
    return found


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each key over the rows that have a finite value for it."""
    values: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for key, value in row.items():
            if math.isfinite(value):
                values[key].append(value)
    return {key: sum(v) / len(v) for key, v in sorted(values.items())}


def _epoch_means(runs: list[dict[str, dict[int, float]]]) -> dict[str, dict[int, float]]:
    """Each metric's mean per epoch over the runs, at the epochs every run recorded (finite values)."""
    if not runs:
        return {}
    keys = set.intersection(*(set(run) for run in runs))
    out: dict[str, dict[int, float]] = {}
    for key in sorted(keys):
        epochs = set.intersection(*(set(run[key]) for run in runs))
        points = {}
        for epoch in sorted(epochs):
            values = [run[key][epoch] for run in runs]
            if all(math.isfinite(v) for v in values):
                points[epoch] = sum(values) / len(values)
        if points:
            out[key] = points
    return out


def _trial_status(runs: list[RunRecord]) -> str:
    """FINISHED when every repeat completed, RUNNING while one is pending or running, else FAILED
    when one failed and KILLED when one was interrupted (or lost its worker)."""
    states = {r.status for r in runs}
    if states and states <= {RunStatus.COMPLETED}:
        return "FINISHED"
    if not states or states & {RunStatus.PENDING, RunStatus.RUNNING}:
        return "RUNNING"
    return "FAILED" if RunStatus.FAILED in states else "KILLED"


def _create_child(client: Any, experiment_id: str, parent_id: str, run: RunRecord, start: int) -> Any:
    tags = {PARENT_TAG: parent_id, KIND_TAG: "repeat", RUN_ID_TAG: str(run.id), CONFIG_HASH_TAG: run.config_hash,
            "spikelab.seed": str(run.seed), "spikelab.run_dir": run.output_dir, TRIAL_TAG: run.trial_name}
    return client.create_run(experiment_id, run_name=f"{run.trial_name}/repeat_{run.repeat}", start_time=start,
                             tags=tags)


def _fill_params(client: Any, child: Any, params: dict[str, str]) -> None:
    missing = {k: v for k, v in params.items() if k not in child.data.params}
    if missing:
        _log_batch(client, child.info.run_id, params=missing)


def _log_points(client: Any, run: Any, points: dict[str, dict[int, float]]) -> int:
    """Log the points (key -> step -> value) the run lacks, or whose value at that step differs
    (NaN equals NaN; MLflow keeps +-inf as +-1.797e308); how many were logged. Only keys the run
    has logged already cost a look at their history."""
    from mlflow.entities import Metric

    run_id, logged = run.info.run_id, set(run.data.metrics)
    batch = []
    for key, steps in points.items():
        key = mlflow_key(key)
        history = client.get_metric_history(run_id, key) if key in logged else []
        have = {int(m.step): m.value for m in history}  # the last value per step
        batch += [Metric(key, float(value), 0, int(step)) for step, value in steps.items()
                  if step not in have or not _same(have[step], value)]
    _log_batch(client, run_id, batch)
    return len(batch)


def _same(logged: float, value: float) -> bool:
    if math.isnan(value):
        return math.isnan(logged)
    if math.isinf(value):
        return abs(logged) >= 1e308 and (logged > 0) == (value > 0)
    return logged == value


def _fill_status(client: Any, child: Any, run: RunRecord) -> int:
    status = MLFLOW_STATUS.get(run.status, "RUNNING")
    end = _ms(run.finished_at) if run.finished_at is not None and status != "RUNNING" else None
    tags = {}
    if run.status == RunStatus.FAILED and run.error_type:
        tags["spikelab.error"] = f"{run.error_type}: {run.error_message or ''}"[:8000]
    if any(child.data.tags.get(k) != v for k, v in tags.items()):
        _log_batch(client, child.info.run_id, tags=tags)
    if child.info.status == status and (end is None or child.info.end_time == end):
        return 0
    if status == "RUNNING":
        client.update_run(child.info.run_id, status="RUNNING")
    else:
        client.set_terminated(child.info.run_id, status, end_time=end)
    return 1


def _artifact_paths(client: Any, run_id: str, path: str | None = None) -> set[str]:
    """Every artifact file path of the run (recursively)."""
    found: set[str] = set()
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            found |= _artifact_paths(client, run_id, entry.path)
        else:
            found.add(entry.path)
    return found


def _delete_unknown_parents(client: Any, experiment_id: str, keep: set[str]) -> int:
    deleted = 0
    for run in _search_runs(client, experiment_id, f"tags.`{KIND_TAG}` = 'trial'"):
        if run.info.run_id not in keep:
            client.delete_run(run.info.run_id)
            deleted += 1
    return deleted
