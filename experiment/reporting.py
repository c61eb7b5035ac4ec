"""What ``run`` prints at its end: the per-trial table of the experiment and where everything is."""
from __future__ import annotations

import math
import shlex
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from settings.metrics import headline_summary
from tools.locations import DEFAULT_DB
from tools.text_table import summary_table


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
          + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
          + ("; mean ± sd over the n COMPLETED repeats of each trial" if counts.get("COMPLETED") else ""), file=out)
    metrics = headline_summary(sorted({key for _, key, _ in summaries}))
    if metrics:
        for line in summary_table(trial_summaries(runs, summaries, metrics), metrics):
            print("  " + line, file=out)
    db_url = absolute_url(result.db_url)
    print(f"\ndatabase:    {db_url}", file=out)
    print(f"run folders: {Path(result.run_root).resolve()}/<trial>/repeat_<k>/", file=out)
    if result.mlflow_uri:
        from experiment.mlflow_mirror import mlflow_ui_command

        print(f"MLflow:      {mlflow_ui_command(result.mlflow_uri)}", file=out)
    root = shlex.quote(str(Path(result.run_root).resolve()))
    if result.loggers.tensorboard is not None:  # every run folder's tb/ is a run in TensorBoard's selector
        print(f"TensorBoard: tensorboard --logdir {root}", file=out)
    if result.loggers.wandb is not None and result.loggers.wandb.mode == "offline":
        print(f"W&B:         wandb sync {root}/*/repeat_*/wandb/offline-run-*", file=out)
    name = shlex.quote(result.experiment.name)
    db = "" if is_default_db(result.db_url) else f" --db {shlex.quote(db_url)}"  # pastes into a shell
    print(f"more:        {cli_command()} show {name}{db} | status {name}{db} | report {name}{db} | "
          f"export {name} --csv {name}.csv{db}", file=out)
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
