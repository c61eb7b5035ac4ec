"""The read commands that print analysis frames: ``show`` (per-trial table, top runs, search
fronts) and ``export`` (a CSV of runs or of the per-trial aggregate). They live with what they
print; ``status`` and ``list``, which print store records, are in experiment/commands.py."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TextIO

import analysis
from analysis.stats import SOP_METRIC, SOP_RATIO
from experiment.store import RunStatus, describe_extension, extended_runs, find_experiment, open_readonly
from settings.errors import ConfigError, ConfigIssue
from settings.metrics import cost_summary, headline_summary
from tools.json_output import emit_json
from tools.text_table import summary_table

STATES = [s.value for s in RunStatus]


def lower_is_better(metric: str) -> bool:
    """Losses, spike counts, times, epochs and convergence epochs rank lowest first; accuracies
    highest first."""
    return re.search(r"loss|spikes|time|epoch|convergence", metric) is not None


def cmd_show(name: str, db: str | None, as_json: bool, top: int | None, metric: str | None,
             out: TextIO | None = None, version: int | None = None) -> int:
    out = out or sys.stdout
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
        fronts = analysis.search_fronts(record, store)
        extended = extended_runs(store, record)
    finally:
        store.close()
    if as_json:
        document = {"experiment": record.name, "version": record.version,
                    "trials": frame.to_dict(orient="records") if frame is not None else [],
                    "status": counts, "extended": extended}
        if top:
            document["top"] = best.to_dict(orient="records") if best is not None else []
        if fronts:
            document["searches"] = {name: {"objectives": search.objectives, "params": search.params,
                                           "points": len(search.points), "pruned": int(search.points["pruned"].sum()),
                                           "front": search.front.to_dict(orient="records")}
                                    for name, search in fronts.items()}
        emit_json(document, out)
        return 0
    print(f"{record.name} (version {record.version}): mean ± sd (sample standard deviation) over the n COMPLETED "
          "repeats of each trial", file=out)
    if frame is not None:
        for line in summary_table(frame.to_dict(orient="records"), headline_summary(metrics) or metrics[:4]):
            print("  " + line, file=out)
        if costs := cost_summary(metrics):
            print("", file=out)
            for line in summary_table(frame.to_dict(orient="records"), costs):
                print("  " + line, file=out)
        if SOP_RATIO in frame.columns:
            ratios = ", ".join(f"{trial} {ratio:.3g}" for trial, ratio in zip(frame["trial"], frame[SOP_RATIO]))
            print(f"\n{SOP_RATIO} (mean {SOP_METRIC} / that of the ALIF trials): {ratios}", file=out)
    else:
        print("  no COMPLETED run yet; runs per trial:", file=out)
        for trial, by_state in counts.items():
            shown = ", ".join(f"{by_state[state]} {state.lower()}" for state in STATES if by_state.get(state))
            print(f"  {trial}: {shown or 'no runs'}", file=out)
    if extended:
        print(f"\nextended runs: {', '.join(describe_extension(entry) for entry in extended)}", file=out)
    if best is not None:
        print(f"\ntop {top} runs by {metric} ({'lowest' if ascending else 'highest'} first):", file=out)
        print(best.to_string(index=False), file=out)
    elif top:
        print(f"\ntop {top} runs: no COMPLETED run to rank", file=out)
    for name, search in fronts.items():
        print(f"\nsearch {name}, {analysis.pareto.describe(search)}:", file=out)
        print(search.front.to_string(index=False) if len(search.front) else "  no completed point yet", file=out)
    return 0


def cmd_export(name: str, path: str, per_run: bool, db: str | None, out: TextIO | None = None,
               version: int | None = None) -> int:
    out = out or sys.stdout
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
