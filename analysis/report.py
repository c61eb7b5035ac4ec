"""``python main.py report``: plots and an HTML summary of one experiment in one folder.

The page (``index.html``) holds, in order:

- the per-trial summary table: the swept params, n, and ``mean ± sd`` of each summary value
  (sample standard deviation over the COMPLETED repeats, the cell says its n when it differs from
  the row's); the full table with sem, Student-t CI and n per metric is ``summary.csv``. Wide
  tables scroll sideways inside the page.
- the runs that did not complete (FAILED, INTERRUPTED, STALE, ...) with their error;
- the tables that ``REPORT_TABLES`` entries add (a search's Pareto front, ...);
- learning curves, the headline metric against every swept param (grid means as lines, search
  samples as crosses), a heatmap for each pair of params a grid sweeps, a scatter for each pair a
  search samples; bands and dots as analysis.plots says;
- the figures ``REPORT_SECTIONS`` entries add (tempotron capacity, convergence and SOPs, ...);
- the environment capsule (git commit, python, packages, host).

Hooks, for model families and other analyses to add to every report:

- ``REPORT_SECTIONS[name] = f(record, out_dir, store) -> [(title, png path, caption)]``;
- ``REPORT_TABLES[name] = f(record, store) -> [(title, DataFrame, caption)]``.
Each returns an empty list where it does not apply.
"""
from __future__ import annotations

import html
import itertools
import math
from pathlib import Path
from typing import Any, Callable

from analysis.frames import COMPLETED, RunTable, read_run_table
from analysis.intervals import BAND_RULE
from analysis.plots import MAX_LINES, plot_heatmap, plot_learning_curves, plot_metric_vs_param, plot_search_scatter
from analysis.source import DB, Experiment, reading, report_folder, resolve_experiment
from analysis.stats import summarize
from analysis.sweeps import GRID, SEARCH, sweep_layout
from settings.metrics import CONVERGENCE, TEST_ACC, TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS

HEADLINE = ("best_val_acc", "final_val_acc", "best_train_acc", "final_train_acc", "final_test_acc")
#: the summary values the table shows after the headline ones, when the runs have them (the SOP
#: ratio against ALIF follows when the experiment has an ALIF trial: analysis.stats)
MORE = ("test_acc_at_best_val", "final_spikes_per_sample", "spikes_per_sample_at_best", "n_params",
        *CONVERGENCE)
CURVES = (TRAIN_ACC, VAL_ACC, TEST_ACC, TRAIN_LOSS, VAL_LOSS)
ERROR_CHARS = 400

REPORT_SECTIONS: dict[str, Callable] = {}
REPORT_TABLES: dict[str, Callable] = {}

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
.scroll{overflow-x:auto;max-width:100%;border:1px solid #eee}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f4f4f4;max-width:11em;vertical-align:bottom}th.key{white-space:nowrap}
td{white-space:nowrap}td.error{white-space:normal;min-width:30em;font-family:monospace;font-size:12px}
figure{display:inline-block;margin:1em;vertical-align:top;max-width:540px}
figure.wide{max-width:100%}figure.wide img{max-width:100%}
img{max-width:520px}figcaption{font-size:13px}p.note{font-size:13px;color:#555}"""


def build_report(experiment: Experiment, out_dir: str | Path | None = None, db: DB = None,
                 version: int | None = None) -> Path:
    """Write the plots, ``summary.csv`` and ``index.html`` into ``out_dir`` (default
    outputs/<experiment>/report/); returns the page."""
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        folder = Path(out_dir) if out_dir is not None else report_folder(record)
        folder.mkdir(parents=True, exist_ok=True)
        table = read_run_table(record, store)
        parts = [_header(record, table)]
        figures: list[tuple[str, Path, str]] = []
        if table.completed().empty:
            parts.append("<h2>Summary over repeats</h2><p>No run has completed yet.</p>")
        else:
            parts.append(_summary(record, table, store, folder))
        parts.append(_failures(table))
        for build in REPORT_TABLES.values():
            for title, frame, caption in build(record, store):
                parts.append(f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(caption)}</p>"
                             f"<div class='scroll'>{frame.to_html(index=False, float_format=_g, na_rep='-')}</div>")
        if not table.completed().empty:
            figures += _figures(record, table, store, folder)
            for section in REPORT_SECTIONS.values():
                figures += section(record, folder, store)
        parts.append(_figure_html(figures, folder))
        parts.append(_environment(store.environment(record.id)))
    index = folder / "index.html"
    index.write_text(_page(record, parts), encoding="utf-8")
    return index


def _g(value: float) -> str:
    return f"{value:.4g}"


def _header(record: Any, table: RunTable) -> str:
    counts = table.runs["status"].value_counts().to_dict()
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    return (f"<h1>{html.escape(record.name)} (version {record.version})</h1>"
            f"<p>{html.escape(record.desc or '')}</p><p>Runs: {html.escape(states)}; created "
            f"{html.escape(str(record.created_at)[:19])} UTC; root seed {record.root_seed}; "
            f"config folder {html.escape(str(record.config_dir))}.</p>")


def _summary(record: Any, table: RunTable, store: Any, folder: Path) -> str:
    metrics = [m for m in HEADLINE if m in table.summary_columns]
    shown = metrics + [m for m in MORE if m in table.summary_columns]
    if not shown:
        shown = [m for m in table.summary_columns if "/label_" not in m][:8]
    frame = summarize(record, by="trial", metrics=shown, db=store)
    frame.to_csv(folder / "summary.csv", index=False)
    params = [p for p in table.varying if p in table.runs.columns]
    first = table.runs.drop_duplicates("trial").set_index("trial")
    head = ["trial", *params, "n", *shown] + (["sop_ratio_vs_alif"] if "sop_ratio_vs_alif" in frame.columns else [])
    rows = []
    for record_row in frame.to_dict(orient="records"):
        n = int(record_row[f"{shown[0]}_n"])
        cells = [html.escape(str(record_row["trial"]))]
        cells += [html.escape(_value(first.loc[record_row["trial"], p])) for p in params]
        cells.append(str(n))
        for metric in shown:
            cells.append(html.escape(_mean_sd(record_row[f"{metric}_mean"], record_row[f"{metric}_std"],
                                              int(record_row[f"{metric}_n"]), n)))
        if "sop_ratio_vs_alif" in frame.columns:
            cells.append(_value(record_row["sop_ratio_vs_alif"]))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    names = _short_names(params)
    header = "<tr>" + "".join(f"<th title='{html.escape(h)}'>{_breakable(names.get(h, h))}</th>" for h in head) + "</tr>"
    return ("<h2>Summary over repeats</h2><p class='note'>Each cell: mean ± sd (sample standard deviation, "
            "ddof 1) over the trial's n COMPLETED repeats; a cell over fewer values says its n. "
            "<a href='summary.csv'>summary.csv</a> has sem, the Student-t 95% CI half-width and n per "
            f"value.</p><div class='scroll'><table>{header}{''.join(rows)}</table></div>")


def _breakable(name: str) -> str:
    """``name`` escaped, with line-break opportunities after ``_``, ``.`` and ``/``."""
    return "".join(html.escape(c) + ("<wbr>" if c in "_./" else "") for c in name)


def _short_names(params: list[str]) -> dict[str, str]:
    """Param columns -> their last path part with its unit (``tau_m (ms)``), the whole path where
    two params share a last part."""
    from analysis.sweeps import unit

    last = {p: p.rsplit(".", 1)[-1] for p in params}
    shared = {name for name in last.values() if list(last.values()).count(name) > 1}
    names = {p: p if last[p] in shared else last[p] for p in params}
    return {p: f"{name} ({unit(p)})" if unit(p) else name for p, name in names.items()}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _mean_sd(mean: float, sd: float, n: int, row_n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "-"
    text = f"{mean:.4g}" if math.isnan(sd) else f"{mean:.4g} ± {sd:.2g}"
    return text if n == row_n else f"{text} (n={n})"


def _failures(table: RunTable) -> str:
    failed = table.runs[table.runs["status"] != COMPLETED]
    if failed.empty:
        return "<h2>Runs that did not complete</h2><p>None: every run completed.</p>"
    rows = []
    for run in failed.itertuples():
        message = " ".join(str(x) for x in (run.error_type, run.error_message) if isinstance(x, str))
        message = message if len(message) <= ERROR_CHARS else message[:ERROR_CHARS] + " ..."
        rows.append(f"<tr><td>{html.escape(str(run.trial))}</td><td>{run.repeat}</td><td>{run.status}</td>"
                    f"<td>{run.attempts}</td><td class='error'>{html.escape(message or '-')}</td>"
                    f"<td>{html.escape(str(run.output_dir))}</td></tr>")
    return (f"<h2>Runs that did not complete ({len(failed)})</h2><p class='note'>Their values count nowhere in "
            "the tables and figures.</p><div class='scroll'><table><tr><th>trial</th><th>repeat</th><th>state</th>"
            f"<th>attempts</th><th>error</th><th>run folder</th></tr>{''.join(rows)}</table></div>")


def _numeric(values) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def _figures(record: Any, table: RunTable, store: Any, folder: Path) -> list[tuple[str, Path, str]]:
    figures = []
    trials = table.runs["trial"].nunique()
    main_curve = VAL_ACC if store.metrics(record.id, keys=[VAL_ACC]) else TRAIN_ACC
    for key in CURVES:  # many trials: the main curve as small multiples, the others for the best MAX_LINES
        top_k = None if key == main_curve or trials <= MAX_LINES else MAX_LINES
        for path in plot_learning_curves(record, [key], out_dir=folder, db=store, top_k=top_k):
            note = "" if top_k is None else f" Only the {top_k} trials with the best final mean, of {trials}."
            figures.append((f"learning curve: {key}", path, BAND_RULE + "." + note))
    headline = next((m for m in HEADLINE if m in table.summary_columns), None)
    if headline is None:
        return figures
    layout = sweep_layout(store, record)
    column = {path: name for path, name in table.param_columns.items()}
    numeric = [p for p in table.varying if _numeric(table.runs[p])]
    grids = {g: [column[p] for p in params if column.get(p) in numeric] for g, params in layout.groups(GRID).items()}
    searches = {g: [column[p] for p in params if column.get(p) in numeric]
                for g, params in layout.groups(SEARCH).items()}
    for param in numeric:
        partners = [others for others in grids.values() if param in others and len(others) == 2]
        hue = next((p for p in partners[0] if p != param), None) if partners else None
        name = f"{headline}_vs_{_slug(param)}.png"
        path = plot_metric_vs_param(record, headline, param, hue=hue, out=folder / name, db=store)
        what = f"{headline} vs {param}" + (f", one line per {hue}" if hue else "")
        figures.append((what, path, f"{BAND_RULE}; search samples are crosses, never joined"))
    for group, params in grids.items():
        for x, y in itertools.combinations(params, 2):
            path = plot_heatmap(record, headline, x, y, out=folder / f"heatmap_{_slug(group)}_{_slug(y)}_vs_{_slug(x)}.png",
                                db=store)
            figures.append((f"grid {group}: {headline} over {x} x {y}", path, "mean of the COMPLETED repeats and n per "
                                                                              "cell; search samples are not in it"))
    for group, params in searches.items():
        for x, y in itertools.combinations(params, 2):
            path = plot_search_scatter(record, headline, x, y, out=folder / f"search_{_slug(group)}_{_slug(y)}_vs_"
                                                                            f"{_slug(x)}.png", db=store)
            if path is not None:
                figures.append((f"search {group}: {x} x {y}", path, f"one point per sampled run, colour: {headline}"))
    return figures


def _figure_html(figures: list[tuple[str, Path, str]], folder: Path) -> str:
    parts = ["<h2>Figures</h2>"]
    for title, path, caption in figures:
        path = Path(path)
        rel = path.resolve().relative_to(folder.resolve()) if path.resolve().is_relative_to(folder.resolve()) else path
        wide = " class='wide'" if _png_width(path) > 1100 else ""
        parts.append(f"<figure{wide}><a href='{html.escape(str(rel))}'><img src='{html.escape(str(rel))}' "
                     f"alt='{html.escape(title)}'></a><figcaption><b>{html.escape(title)}</b>: "
                     f"{html.escape(caption)}</figcaption></figure>")
    return "\n".join(parts)


def _png_width(path: Path) -> int:
    """The pixel width in a PNG's header (0 when it is not one)."""
    try:
        head = Path(path).read_bytes()[:24]
    except OSError:
        return 0
    return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


def _environment(capsule: dict[str, Any]) -> str:
    if not (capsule.get("python") or capsule.get("packages")):
        return "<h2>Environment</h2><p>No environment capsule recorded.</p>"
    sha = capsule.get("git_sha") or "unknown"
    dirty = {True: " (uncommitted changes)", False: "", None: ""}.get(capsule.get("git_dirty"), "")
    rows = [("git commit", f"{sha}{dirty}"), ("python", capsule.get("python")), ("host", capsule.get("host")),
            ("CPU", f"{capsule.get('cpu') or '?'} ({capsule.get('cpu_count') or '?'} cores)"),
            ("platform", capsule.get("platform")), ("recorded", str(capsule.get("created_at"))[:19] + " UTC")]
    packages = ", ".join(f"{name} {version}" for name, version in sorted((capsule.get("packages") or {}).items()))
    rows.append(("packages", packages))
    body = "".join(f"<tr><th class='key'>{html.escape(k)}</th><td class='error'>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return ("<h2>Environment</h2><p class='note'>What the experiment version was created with.</p>"
            f"<div class='scroll'><table>{body}</table></div>")


def _page(record: Any, parts: list[str]) -> str:
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(record.name)}</title>",
                      f"<style>{STYLE}</style></head><body>", *parts, "</body></html>"])
