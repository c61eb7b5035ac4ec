"""``python main.py report``: plots and an HTML summary of one experiment in one folder.

The report holds the per-trial summary table (mean, std, 95% CI, n over repeats; with the
parameter count, spike counts, convergence epochs and, next to an ALIF trial, the SOP ratio),
learning curves, the headline metric against every swept parameter (a heatmap for two of them),
and the sections that model families add through ``REPORT_SECTIONS`` (e.g. the tempotron
capacity curve, the convergence curves and SOPs of analysis.resonator_report).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Callable

from analysis.frames import read_run_table
from analysis.plots import plot_heatmap, plot_learning_curves, plot_metric_vs_param
from analysis.source import DB, Experiment, reading, report_folder, resolve_experiment
from analysis.stats import summarize
from settings.metrics import CONVERGENCE, TEST_ACC, TRAIN_ACC, TRAIN_LOSS, VAL_ACC

HEADLINE = ("best_val_acc", "final_val_acc", "best_train_acc", "final_train_acc", "final_test_acc")
#: the summary values the table shows after the headline ones, when the runs have them (the SOP
#: ratio against ALIF follows when the experiment has an ALIF trial: analysis.stats)
MORE = ("test_acc_at_best_val", "final_spikes_per_sample", "spikes_per_sample_at_best", "n_params",
        *CONVERGENCE)

# name -> function(experiment record, out_dir, store) -> [(title, png path, caption)]; empty if not applicable
REPORT_SECTIONS: dict[str, Callable] = {}


def build_report(experiment: Experiment, out_dir: str | Path | None = None, db: DB = None,
                 version: int | None = None) -> Path:
    """Write the plots and ``index.html`` into ``out_dir`` (default outputs/<experiment>/report/)."""
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        folder = Path(out_dir) if out_dir is not None else report_folder(record)
        folder.mkdir(parents=True, exist_ok=True)
        table = read_run_table(record, store)
        metrics = [m for m in HEADLINE if m in table.summary_columns]
        figures: list[tuple[str, Path, str]] = []
        if table.completed().empty:
            summary_html = "<p>No run has completed yet.</p>"
        else:
            shown = metrics + [m for m in MORE if m in table.summary_columns]
            frame = summarize(record, by="trial", metrics=shown, db=store)
            summary_html = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")
            curves = plot_learning_curves(record, [TRAIN_ACC, VAL_ACC, TEST_ACC, TRAIN_LOSS], out_dir=folder,
                                          db=store)
            figures += [(f"learning curve: {p.stem.removeprefix('learning_curve_')}", p,
                         "mean over repeats with its 95% confidence band") for p in curves]
            headline = metrics[0] if metrics else None
            numeric = [p for p in table.varying if _numeric(table.runs[p])]
            if headline is not None:
                for param in numeric:
                    path = plot_metric_vs_param(record, headline, param, out=folder / f"{headline}_vs_{_slug(param)}.png",
                                                db=store)
                    figures.append((f"{headline} vs {param}", path, "mean over repeats with its 95% CI band"))
                if len(numeric) == 2:
                    path = plot_heatmap(record, headline, numeric[0], numeric[1], out=folder / "heatmap.png", db=store)
                    figures.append((f"{headline} over {numeric[0]} x {numeric[1]}", path, "mean over repeats"))
            for section in REPORT_SECTIONS.values():
                figures += section(record, folder, store)
        counts = table.runs["status"].value_counts().to_dict()
    index = folder / "index.html"
    index.write_text(_page(record, counts, summary_html, figures, folder), encoding="utf-8")
    return index


def _numeric(values) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def _page(record, counts: dict, summary_html: str, figures: list, folder: Path) -> str:
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(record.name)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}figure{display:inline-block;margin:1em}"
             "img{max-width:520px}</style></head><body>",
             f"<h1>{html.escape(record.name)} (version {record.version})</h1>",
             f"<p>{html.escape(record.desc or '')}</p><p>Runs: {html.escape(states)}; created "
             f"{html.escape(str(record.created_at)[:19])} UTC; root seed {record.root_seed}.</p>",
             "<h2>Summary over repeats</h2>", summary_html, "<h2>Figures</h2>"]
    for title, path, caption in figures:
        rel = Path(path).resolve().relative_to(folder.resolve()) if Path(path).resolve().is_relative_to(
            folder.resolve()) else Path(path)
        parts.append(f"<figure><img src='{html.escape(str(rel))}' alt='{html.escape(title)}'>"
                     f"<figcaption><b>{html.escape(title)}</b>: {html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
