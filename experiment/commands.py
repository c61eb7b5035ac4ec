"""The read-side commands of the CLI that print store records and run folders: status, list, eval,
db upgrade (``show`` and ``export`` print analysis frames: analysis/commands.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from experiment.store import (ExperimentRecord, RunStatus, SQLStore, describe_extension, extended_runs,
                              find_experiment, open_readonly)
from settings.errors import ConfigError, ConfigIssue
from tools.json_output import emit_json
from tools.locations import DEFAULT_DB

STATES = [s.value for s in RunStatus]


def status_document(store: SQLStore, experiment: ExperimentRecord) -> dict:
    counts = store.status_counts(experiment.id)
    totals = {state: sum(c.get(state, 0) for c in counts.values()) for state in STATES}
    failures = [{"run_id": r.id, "trial": r.trial_name, "repeat": r.repeat, "status": r.status.value,
                 "attempts": r.attempts, "error_type": r.error_type, "error_message": r.error_message}
                for r in store.runs(experiment.id, [RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.STALE])]
    return {"experiment": experiment.name, "version": experiment.version, "totals": totals,
            "trials": counts, "problems": failures, "missing_artifacts": missing_artifacts(store, experiment),
            "extended": extended_runs(store, experiment), "stages": stage_runs(store, experiment)}


def stage_runs(store: SQLStore, experiment: ExperimentRecord) -> list[dict]:
    """The runs of staged trials: their stage and the run each starts from (which may belong to
    another experiment of the database)."""
    found = []
    for run in store.runs(experiment.id):
        if run.stage is None:
            continue
        upstream = store.run(run.upstream_run_id) if run.upstream_run_id is not None else None
        found.append({"run_id": run.id, "trial": run.trial_name, "stage": run.stage, "repeat": run.repeat,
                      "status": run.status.value, "upstream_run_id": run.upstream_run_id,
                      "upstream": None if upstream is None else f"{upstream.trial_name}/repeat_{upstream.repeat}",
                      "upstream_status": None if upstream is None else upstream.status.value})
    return found


def missing_artifacts(store: SQLStore, experiment: ExperimentRecord) -> list[dict]:
    """COMPLETED runs whose recorded files are gone or changed size (a cheap check: a stat per
    file, no hashing). A relative path is taken from the current directory, as ``run`` wrote it."""
    completed = {r.id: r for r in store.runs(experiment.id, [RunStatus.COMPLETED])}
    recorded: dict[int, dict[str, int]] = {}
    for run_id, _kind, path, _sha, size in store.experiment_artifacts(experiment.id):
        if run_id in completed:
            recorded.setdefault(run_id, {})[path] = size  # the latest record of a path wins
    found = []
    for run_id, files in recorded.items():
        missing, resized = [], []
        for path, size in files.items():
            try:
                actual = os.stat(path).st_size
            except OSError:
                missing.append(path)
                continue
            if actual != size:
                resized.append(path)
        if missing or resized:
            run = completed[run_id]
            found.append({"run_id": run_id, "trial": run.trial_name, "repeat": run.repeat,
                          "output_dir": run.output_dir, "folder_exists": Path(run.output_dir).is_dir(),
                          "recorded": len(files), "missing": missing, "size_changed": resized})
    return found


def describe_missing(entry: dict) -> str:
    """One line for a COMPLETED run whose recorded files are not all there."""
    where = f"COMPLETED {entry['trial']}/repeat_{entry['repeat']}"
    if not entry["folder_exists"]:
        return f"{where}: its run folder {entry['output_dir']} is gone ({entry['recorded']} recorded files missing)"
    parts = []
    if entry["missing"]:
        parts.append(f"{len(entry['missing'])} of its {entry['recorded']} recorded files are missing "
                     f"({', '.join(Path(p).name for p in entry['missing'])})")
    if entry["size_changed"]:
        parts.append(f"{len(entry['size_changed'])} changed size "
                     f"({', '.join(Path(p).name for p in entry['size_changed'])})")
    return f"{where}: {'; '.join(parts)} in {entry['output_dir']}"


def cmd_status(name: str | None, db: str | None, as_json: bool, out: TextIO | None = None,
               version: int | None = None) -> int:
    out = out or sys.stdout
    store = open_readonly(db)
    try:
        if name is None:
            latest: dict[str, ExperimentRecord] = {}
            for record in store.list_experiments():
                latest[record.name] = record
            records = list(latest.values())
        else:
            records = [find_experiment(store, name, version)]
        documents = [status_document(store, r) for r in records]
    finally:
        store.close()
    if as_json:
        emit_json(documents[0] if name is not None else documents, out)
        return 0
    for doc in documents:
        shown = ", ".join(f"{n} {s.lower()}" for s, n in doc["totals"].items() if n)
        lost = len(doc["missing_artifacts"])
        print(f"{doc['experiment']} (version {doc['version']}): {shown or 'no runs'}"
              + (f" ({lost} completed run(s) with missing files)" if lost else ""), file=out)
        width = max([len(t) for t in doc["trials"]] + [5])
        print(f"  {'trial':<{width}}  " + "  ".join(f"{s[:9]:>9}" for s in STATES), file=out)
        for trial, counts in doc["trials"].items():
            print(f"  {trial:<{width}}  " + "  ".join(f"{counts.get(s, 0):>9}" for s in STATES), file=out)
        for p in doc["problems"]:
            print(f"  {p['status']} {p['trial']}/repeat_{p['repeat']} (attempts {p['attempts']}): "
                  f"{p['error_type'] or ''}{': ' if p['error_type'] else ''}{p['error_message'] or ''}", file=out)
        for entry in doc["missing_artifacts"]:
            print(f"  {describe_missing(entry)}", file=out)
        for entry in doc["extended"]:
            print(f"  extended {describe_extension(entry)}", file=out)
        for entry in doc["stages"]:
            if entry["upstream_run_id"] is not None:
                print(f"  stage {entry['trial']}/repeat_{entry['repeat']} (run {entry['run_id']}) starts from run "
                      f"{entry['upstream_run_id']} ({entry['upstream']}, {entry['upstream_status']})", file=out)
    return 0


def cmd_list(db: str | None, as_json: bool, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    store = open_readonly(db)
    try:
        rows = []
        for record in store.list_experiments():
            counts = store.status_counts(record.id)
            rows.append({"id": record.id, "name": record.name, "version": record.version, "desc": record.desc,
                         "created_at": record.created_at, "trials": len(counts),
                         "runs": sum(sum(c.values()) for c in counts.values()),
                         "completed": sum(c.get("COMPLETED", 0) for c in counts.values())})
    finally:
        store.close()
    if as_json:
        emit_json(rows, out)
        return 0
    if not rows:
        print("no experiments", file=out)
    for r in rows:
        print(f"{r['name']:<24} v{r['version']:<3} {r['trials']:>4} trials {r['completed']:>5}/{r['runs']:<5} runs "
              f"completed  {str(r['created_at'])[:19]}  {r['desc'][:50]}", file=out)
    return 0


def cmd_eval(run_dir: str, checkpoint: str, split: str, as_json: bool, out: TextIO | None = None,
             plots: bool = True, plots_dir: str | None = None) -> int:
    """Loss and accuracy of a saved run's checkpoint (``best``, ``last``, ``epoch:N`` or a path) on
    ``split``; for a first-spike model also its figures (pipeline.callbacks.first_spike_plots and
    the confusion matrix), into ``plots_dir`` (default: ``plots/eval_<split>_epoch_<N>/`` of the run
    folder) unless ``plots`` is off."""
    out = out or sys.stdout
    import pipeline  # noqa: F401
    from experiment.run_folder import RunFolder, RunFolderError
    from experiment.trained_run import load_trained_run
    from pipeline.callbacks.checkpoint import CheckpointError, load_checkpoint

    folder = RunFolder(run_dir)
    try:
        folder.read_config()
        path = folder.existing_checkpoint(checkpoint)
    except RunFolderError as exc:
        raise ConfigError(ConfigIssue("", str(exc), exc.argument)) from None
    try:
        load_checkpoint(path)  # before the data is built: a bad file is refused at once
    except CheckpointError as exc:
        raise ConfigError(ConfigIssue("", str(exc), "--checkpoint")) from None
    run = load_trained_run(folder.path, str(path))
    result = run.pipeline.evaluate(run.model, run.encoded[split], run.splits.n_classes, run.epoch)
    metrics = {f"{split}_{k}": v for k, v in result.items()}
    drawn = []
    if plots:
        from pipeline.callbacks.first_spike_plots import draw_first_spike_plots
        from pipeline.callbacks.run_plots import plot_confusion

        target = Path(plots_dir) if plots_dir else folder.plots / f"eval_{split}_epoch_{run.epoch}"
        drawn = draw_first_spike_plots(run.pipeline, run.model, run.encoded, run.splits.n_classes, target, split,
                                       run.epoch, confusion=plot_confusion)
    if as_json:
        emit_json({"run_dir": str(folder.path), "checkpoint": str(path), **metrics, "epoch": float(run.epoch),
                   "plots": [str(p) for p in drawn]}, out)
    else:
        print(f"{path} (epoch {run.epoch}), {split} split:", file=out)
        for key, value in metrics.items():
            print(f"  {key:<24} {value:.6g}", file=out)
        if drawn:
            print(f"plots: {', '.join(p.name for p in drawn)} in {drawn[0].parent}", file=out)
    return 0


def cmd_db_upgrade(db: str | None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from experiment.store import current_revision, head_revision, upgrade

    url = db or DEFAULT_DB
    before = current_revision(url) if not url.startswith("sqlite:///") or Path(url[10:]).is_file() else None
    upgrade(url)
    print(f"{url}: schema {before or 'empty'} -> {head_revision()}", file=out)
    return 0
