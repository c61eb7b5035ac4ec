"""The BRF paper's comparisons of trials as report figures: convergence curves (the test
accuracy per epoch, mean over repeats with its 95% bootstrap CI where n >= 3, single runs as dots
otherwise, one line per trial) and the SOPs (mean spikes per sample of each trial with bootstrap
CI error bars, or dots for n < 3, labelled with the SOP ratio against the
ALIF trial where the experiment has one; analysis.stats). Both go into the report of every
spiking experiment (``REPORT_SECTIONS``); drawn on matplotlib's Agg canvas like analysis.plots.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.frames import read_run_table
from analysis.intervals import BAND_NAME, BAND_RULE, mean_bands
from analysis.plots import MAX_LINES, _colors, _curve_figure, _figure, _report_dir, _save, _title
from analysis.report import REPORT_SECTIONS
from analysis.source import DB, Experiment, reading, resolve_experiment
from analysis.stats import SOP_METRIC, SOP_RATIO, curve_values, summarize
from settings.metrics import TEST_ACC

CONVERGENCE_PLOT, SOPS_PLOT = "convergence_test_acc.png", "sops.png"


def plot_convergence_curves(experiment: Experiment, out: str | Path | None = None, metric: str = TEST_ACC,
                            db: DB = None, version: int | None = None) -> Path | None:
    """``metric`` (default the test accuracy) per epoch of the COMPLETED runs of each trial: the
    mean over repeats with a 95% bootstrap CI band where n >= 3 (dots: single runs), one line per
    trial (the ``MAX_LINES`` trials with the best final mean when there are more). Returns the
    file (default ``<report>/convergence_test_acc.png``), or None when no completed run recorded
    ``metric``."""
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        values = curve_values(record, [metric], "trial", store)
    if values.empty:
        return None
    many = values["trial"].nunique() > MAX_LINES
    figure = _curve_figure(record, metric, values.assign(key=metric), ["trial"], MAX_LINES if many else None)
    return _save(figure, out if out is not None else _report_dir(record) / CONVERGENCE_PLOT)


def plot_sops(experiment: Experiment, out: str | Path | None = None, metric: str = SOP_METRIC, db: DB = None,
              version: int | None = None) -> Path | None:
    """A bar per trial: the mean ``metric`` (default ``final_spikes_per_sample``, the SOPs) over
    its COMPLETED runs with 95% bootstrap CI error bars (n >= 3; dots: single runs); for ``final_spikes_per_sample`` in an experiment
    with an ALIF trial each bar is labelled with its ``sop_ratio_vs_alif``. Returns the file
    (default ``<report>/sops.png``), or None when no COMPLETED run has a value; ValueError when
    ``metric`` is not a summary column."""
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        frame = summarize(record, by="trial", metrics=[metric], db=store)
        table = read_run_table(record, store)
    frame = frame[frame[f"{metric}_n"] > 0]
    if frame.empty:
        return None
    trials = [str(t) for t in frame["trial"]]
    figure, axes = _figure((max(5.4, 1.2 + 0.8 * len(trials)), 4.2))
    x = np.arange(len(trials))
    mean = frame[f"{metric}_mean"].to_numpy(float)
    done = table.completed()
    bands = mean_bands(done[done["trial"].isin(frame["trial"])], ["trial"], metric).set_index("trial").loc[frame["trial"]]
    lo, hi = bands["lo"].to_numpy(float), bands["hi"].to_numpy(float)
    banded = np.isfinite(lo) & np.isfinite(hi)
    bars = axes.bar(x, mean, color=_colors(len(trials)), alpha=0.85)
    if banded.any():
        axes.errorbar(x[banded], mean[banded], yerr=[mean[banded] - lo[banded], hi[banded] - mean[banded]],
                      color="black", linestyle="none", capsize=4)
    for i, trial in enumerate(frame["trial"]):
        if not banded[i]:
            single = done.loc[done["trial"] == trial, metric].dropna().to_numpy(float)
            axes.scatter(np.full(single.size, x[i]), single, color="black", s=14, zorder=3)
    if SOP_RATIO in frame.columns:
        labels = [f"×{r:.2f}" if np.isfinite(r) else "" for r in frame[SOP_RATIO].to_numpy(float)]
        axes.bar_label(bars, labels, padding=3, fontsize="small")
    axes.set_xticks(x, trials, rotation=30 if len(trials) > 4 else 0, ha="right" if len(trials) > 4 else "center")
    what = "SOPs, mean" + (f", bars: {BAND_NAME}" if banded.any() else "") + (
        "; dots: single runs" if not banded.all() else "") + (", ×: ratio to ALIF" if SOP_RATIO in frame.columns else "")
    axes.set(ylabel=metric, title=_title(record, what))
    axes.grid(alpha=0.3, axis="y")
    return _save(figure, out if out is not None else _report_dir(record) / SOPS_PLOT)


def _report_section(record: Any, folder: Path, store: Any) -> list[tuple[str, Path, str]]:
    """The convergence curves and the SOPs bars, for experiments whose runs recorded them."""
    figures = []
    table = read_run_table(record, store)
    path = plot_convergence_curves(record, folder / CONVERGENCE_PLOT, db=store)
    if path is not None:
        figures.append(("convergence", path, f"test accuracy per epoch, mean over repeats ({BAND_RULE}); "
                                             "the summary's convergence_95/98/100 are the first epochs reaching "
                                             "95/98/100% of the final test accuracy"))
    path = plot_sops(record, folder / SOPS_PLOT, db=store) if SOP_METRIC in table.summary_columns else None
    if path is not None:
        figures.append(("SOPs", path, "final spikes per sample (on the validation split, or the training split "
                                      f"without one), mean over repeats ({BAND_NAME} where n >= 3, else the single runs as dots); "
                                      "labels: sop_ratio_vs_alif where the experiment has an ALIF trial"))
    return figures


REPORT_SECTIONS["convergence_and_sops"] = _report_section
