"""Human-readable summaries for the CLI: the end of ``run``, ``show`` and ``export``."""
from __future__ import annotations

import math
import re
import shlex
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, TextIO

from experiment.commands import DEFAULT_DB, STATES, emit_json, find_experiment, open_readonly
from settings.errors import ConfigError, ConfigIssue

PREFERRED = ("final_train_acc", "final_val_acc", "final_test_acc", "best_val_acc", "best_train_acc",
             "test_acc_at_best_val", "final_spikes_per_sample")


def headline_metrics(summary_columns: list[str]) -> list[str]:
    return [m for m in PREFERRED if m in summary_columns]


def _cell(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {std:.2g}"


def summary_table(records: Iterable[Mapping[str, Any]], metrics: list[str], by: str = "trial") -> list[str]:
    """Rows of ``by``, then ``n`` and ``mean ± std`` for each metric (records as analysis.summarize's
    rows, ``<metric>_n``, ``<metric>_mean``, ``<metric>_std``)."""
    header = [by, "n"] + metrics
    rows = [[str(r[by]), str(int(r[f"{metrics[0]}_n"])) if metrics else "0"] +
            [_cell(r[f"{m}_mean"], r[f"{m}_std"]) for m in metrics] for r in records]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header] + rows]


def cli_command() -> str:
    """``python main.py`` as typed in the current folder: ``main.py`` is named by its absolute path
    unless it is in this folder (so every printed command works where it was printed)."""
    main_py = Path(__file__).resolve().parents[1] / "main.py"
    return "python main.py" if main_py.parent == Path.cwd().resolve() else f"python {shlex.quote(str(main_py))}"


def print_summary(result, out: TextIO | None = None, resume: str | None = None) -> None:
    """After ``run``: the per-trial table, then where the database, run folders and MLflow store are
    (absolute paths: relative ones in experiment.yaml are relative to the current folder).
    ``resume``: the command that resumes unfinished runs (default: "the same command")."""
    from experiment.store import SQLStore
    from experiment.store.engine import absolute_url

    out = out or sys.stdout
    store = SQLStore(result.db_url, readonly=True)
    try:
        runs, summaries = store.runs(result.experiment.id), store.summaries(result.experiment.id)
    finally:
        store.close()
    counts = Counter(run.status.value for run in runs)
    print(f"\nsummary of {result.experiment.name} (version {result.experiment.version}): "
          + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())), file=out)
    metrics = headline_metrics(sorted({key for _, key, _ in summaries}))
    if metrics:
        for line in summary_table(trial_summaries(runs, summaries, metrics), metrics):
            print("  " + line, file=out)
    db_url = absolute_url(result.db_url)
    print(f"\ndatabase:    {db_url}", file=out)
    print(f"run folders: {Path(result.run_root).resolve()}/<trial>/repeat_<k>/", file=out)
    if result.mlflow_uri:
        from experiment.mlflow_mirror import mlflow_ui_command

        print(f"MLflow:      {mlflow_ui_command(result.mlflow_uri)}", file=out)
    name = shlex.quote(result.experiment.name)
    db = "" if is_default_db(result.db_url) else f" --db {shlex.quote(db_url)}"  # pastes into a shell
    print(f"more:        {cli_command()} show {name}{db} | status {name}{db} | export {name} --csv {name}.csv{db}",
          file=out)
    for outcome in result.failed:
        print(f"FAILED {outcome.label}: {outcome.error}", file=out)
    if result.unfinished:
        print(f"{len(result.unfinished)} run(s) did not finish ({shorten(result.unfinished)}); "
              + (f"resume them with: {resume}" if resume else "run the same command again to resume them"), file=out)
    if result.running_elsewhere:
        print(f"{len(result.running_elsewhere)} run(s) are still RUNNING in another process "
              f"({shorten(result.running_elsewhere)}); run the same command again once they finish", file=out)


def trial_summaries(runs: list, summaries: list[tuple[int, str, float]], metrics: list[str]) -> list[dict[str, Any]]:
    """Per trial (in run order): ``<metric>_n``, ``_mean`` and ``_std`` (ddof 1) over its
    COMPLETED runs, missing and NaN values skipped: analysis.summarize's numbers, without the
    pandas import (half a second) that the end of every ``run`` would pay for them."""
    values: dict[int, dict[str, float]] = {}
    for run_id, key, value in summaries:
        values.setdefault(run_id, {})[key] = value
    samples: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        per_metric = samples.setdefault(run.trial_name, {metric: [] for metric in metrics})
        if run.status.value != "COMPLETED":
            continue
        for metric in metrics:
            value = values.get(run.id, {}).get(metric)
            if value is not None and not math.isnan(value):
                per_metric[metric].append(float(value))
    records = []
    for trial, per_metric in samples.items():
        record: dict[str, Any] = {"trial": trial}
        for metric, xs in per_metric.items():
            mean = statistics.fmean(xs) if xs else math.nan
            record |= {f"{metric}_n": len(xs), f"{metric}_mean": mean,
                       f"{metric}_std": math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
                       if len(xs) > 1 else math.nan}
        records.append(record)
    return records


def shorten(labels: list[str], n: int = 5) -> str:
    return ", ".join(labels[:n]) + (", ..." if len(labels) > n else "")


def is_default_db(url: str) -> bool:
    """Whether ``url`` is the database the read commands open without --db."""
    from experiment.store.engine import is_sqlite, sqlite_path

    if url == DEFAULT_DB:
        return True
    if not (is_sqlite(url) and is_sqlite(DEFAULT_DB)):
        return False
    return sqlite_path(url).resolve() == sqlite_path(DEFAULT_DB).resolve()


def lower_is_better(metric: str) -> bool:
    """Losses, spike counts, times and epochs rank lowest first; accuracies highest first."""
    return re.search(r"loss|spikes|time|epoch", metric) is not None


def cmd_show(name: str, db: str | None, as_json: bool, top: int | None, metric: str | None,
             out: TextIO | None = None, version: int | None = None) -> int:
    out = out or sys.stdout
    import analysis

    if top is not None and top < 1:
        raise ConfigError(ConfigIssue("", f"must be >= 1, got {top}", "--top"))
    if metric is not None and top is None:
        top = 5  # --metric alone asks for a ranking
    store = open_readonly(db)
    try:
        record = find_experiment(store, name, version)
        table = analysis.frames.read_run_table(record, store)
        counts = store.status_counts(record.id)
        metrics = [m for m in table.summary_columns if m != "epochs"]
        if metric is not None and table.summary_columns and metric not in table.summary_columns:
            raise ConfigError(ConfigIssue("", f"{metric!r} is not a summary metric; available: "
                                              f"{', '.join(table.summary_columns)}", "--metric"))
        metric = metric or ("best_val_acc" if "best_val_acc" in metrics else "best_train_acc")
        frame = analysis.summarize(record, by="trial", metrics=metrics, db=store) if metrics else None
        ascending = lower_is_better(metric)
        best = analysis.top_runs(record, metric=metric, n=top, ascending=ascending, db=store) \
            if top and metrics else None
        fronts = search_fronts(record, store)
    finally:
        store.close()
    if as_json:
        document = {"experiment": record.name, "version": record.version,
                    "trials": frame.to_dict(orient="records") if frame is not None else [],
                    "status": counts}
        if top:
            document["top"] = best.to_dict(orient="records") if best is not None else []
        if fronts:
            document["searches"] = {name: {"objectives": objectives, "front": front.to_dict(orient="records")}
                                    for name, (objectives, front) in fronts.items()}
        emit_json(document, out)
        return 0
    print(f"{record.name} (version {record.version}): mean ± std over COMPLETED repeats", file=out)
    if frame is not None:
        for line in summary_table(frame.to_dict(orient="records"), headline_metrics(metrics) or metrics[:4]):
            print("  " + line, file=out)
    else:
        print("  no COMPLETED run yet; runs per trial:", file=out)
        for trial, by_state in counts.items():
            shown = ", ".join(f"{by_state[state]} {state.lower()}" for state in STATES if by_state.get(state))
            print(f"  {trial}: {shown or 'no runs'}", file=out)
    if best is not None:
        print(f"\ntop {top} runs by {metric} ({'lowest' if ascending else 'highest'} first):", file=out)
        print(best.to_string(index=False), file=out)
    elif top:
        print(f"\ntop {top} runs: no COMPLETED run to rank", file=out)
    for name, (objectives, front) in fronts.items():
        goal = ", ".join(f"{o.get('direction', 'maximize')} {o['metric']}" for o in objectives)
        title = "best point" if len(objectives) == 1 else f"Pareto front ({len(front)} points)"
        print(f"\nsearch {name} ({goal}): {title}", file=out)
        columns = ["trial"] + [c for o in objectives for c in (f"{o['metric']}_mean", f"{o['metric']}_n")]
        print(front[columns].to_string(index=False) if len(front) else "  no completed point yet", file=out)
    return 0


def search_fronts(record, store) -> dict:
    """Search entries of the experiment's trials.yaml -> (objectives, Pareto front or best point)."""
    import analysis
    from settings.sweep import search_objectives

    fronts = {}
    for trial in record.files.get("trials", []):
        search = trial.get("search")
        if search:
            objectives = search_objectives(search)
            try:
                front = analysis.pareto_front(record, trial["name"], objectives, db=store)
            except ValueError:  # an objective metric no run has produced yet
                front = None
            if front is not None:
                fronts[trial["name"]] = (objectives, front)
    return fronts


def cmd_export(name: str, path: str, per_run: bool, db: str | None, out: TextIO | None = None,
               version: int | None = None) -> int:
    out = out or sys.stdout
    import analysis

    if Path(path).is_dir():
        raise ConfigError(ConfigIssue("", f"must be a file name, got the folder {path} (e.g. {Path(path) / name}.csv)",
                                      "--csv"))
    store = open_readonly(db)
    try:
        record = find_experiment(store, name, version)
        if per_run:
            frame = analysis.load_runs(record, db=store)
        else:
            table = analysis.frames.read_run_table(record, store)
            metrics = [m for m in table.summary_columns if m != "epochs"]
            frame = analysis.aggregate_sweep(record, metric=metrics, db=store)
    finally:
        store.close()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
    except OSError as exc:
        raise ConfigError(ConfigIssue("", f"cannot write {path}: {exc.strerror or exc}", "--csv")) from None
    print(f"wrote {len(frame)} rows x {len(frame.columns)} columns to {path}", file=out)
    return 0
