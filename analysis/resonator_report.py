"""The BRF paper's comparisons of trials as report figures: convergence curves (the test
accuracy per epoch, mean and +-1 std over repeats, one line per trial) and the SOPs (mean
spikes per sample of each trial with +-1 std error bars, labelled with the SOP ratio against the
ALIF trial where the experiment has one; analysis.stats). Both go into the report of every
spiking experiment (``REPORT_SECTIONS``); drawn on matplotlib's Agg canvas like analysis.plots.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.frames import read_run_table
from analysis.plots import _colors, _figure, _legend, _report_dir, _save, _title
from analysis.report import REPORT_SECTIONS
from analysis.source import DB, Experiment, reading, resolve_experiment
from analysis.stats import SOP_METRIC, SOP_RATIO, learning_curves, summarize
from settings.metrics import TEST_ACC

CONVERGENCE_PLOT, SOPS_PLOT = "convergence_test_acc.png", "sops.png"


def plot_convergence_curves(experiment: Experiment, out: str | Path | None = None, metric: str = TEST_ACC,
                            db: DB = None, version: int | None = None) -> Path | None:
    """``metric`` (default the test accuracy) per epoch of the COMPLETED runs of each trial: the
    mean over repeats with a band of +-1 sample std (none for a single repeat), one line per
    trial. Returns the file (default ``<report>/convergence_test_acc.png``), or None when no
    completed run recorded ``metric``."""
    from matplotlib.ticker import MaxNLocator

    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        curves = learning_curves(record, [metric], "trial", store)
    if curves.empty:
        return None
    figure, axes = _figure()
    groups = list(curves.groupby("trial", sort=False))
    for (trial, line), color in zip(groups, _colors(len(groups))):
        epochs, mean, std = (line[c].to_numpy(float) for c in ("epoch", "mean", "std"))
        axes.plot(epochs, mean, color=color, label=str(trial))
        axes.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    axes.set(xlabel="epoch", ylabel=metric, title=_title(record, f"{metric}, mean and ±1 std over repeats"))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    _legend(axes, len(groups), "")
    return _save(figure, out if out is not None else _report_dir(record) / CONVERGENCE_PLOT)


def plot_sops(experiment: Experiment, out: str | Path | None = None, metric: str = SOP_METRIC, db: DB = None,
              version: int | None = None) -> Path | None:
    """A bar per trial: the mean ``metric`` (default ``final_spikes_per_sample``, the SOPs) over
    its COMPLETED runs with +-1 std error bars; for ``final_spikes_per_sample`` in an experiment
    with an ALIF trial each bar is labelled with its ``sop_ratio_vs_alif``. Returns the file
    (default ``<report>/sops.png``), or None when no COMPLETED run has a value; ValueError when
    ``metric`` is not a summary column."""
    with reading(db) as store:
        record = resolve_experiment(store, experiment, version)
        frame = summarize(record, by="trial", metrics=[metric], db=store)
    frame = frame[frame[f"{metric}_n"] > 0]
    if frame.empty:
        return None
    trials = [str(t) for t in frame["trial"]]
    figure, axes = _figure((max(5.4, 1.2 + 0.8 * len(trials)), 4.2))
    x = np.arange(len(trials))
    mean, std = frame[f"{metric}_mean"].to_numpy(float), frame[f"{metric}_std"].to_numpy(float)
    bars = axes.bar(x, mean, yerr=np.nan_to_num(std), capsize=4, color=_colors(len(trials)))
    if SOP_RATIO in frame.columns:
        labels = [f"×{r:.2f}" if np.isfinite(r) else "" for r in frame[SOP_RATIO].to_numpy(float)]
        axes.bar_label(bars, labels, padding=3, fontsize="small")
    axes.set_xticks(x, trials, rotation=30 if len(trials) > 4 else 0, ha="right" if len(trials) > 4 else "center")
    what = "SOPs, ±1 std" + (", ×: ratio to ALIF" if SOP_RATIO in frame.columns else "")
    axes.set(ylabel=metric, title=_title(record, what))
    axes.grid(alpha=0.3, axis="y")
    return _save(figure, out if out is not None else _report_dir(record) / SOPS_PLOT)


def _report_section(record: Any, folder: Path, store: Any) -> list[tuple[str, Path, str]]:
    """The convergence curves and the SOPs bars, for experiments whose runs recorded them."""
    figures = []
    table = read_run_table(record, store)
    path = plot_convergence_curves(record, folder / CONVERGENCE_PLOT, db=store)
    if path is not None:
        figures.append(("convergence", path, "test accuracy per epoch, mean with a ±1 std band over repeats; "
                                             "the summary's convergence_95/98/100 are the first epochs reaching "
                                             "95/98/100% of the final test accuracy"))
    path = plot_sops(record, folder / SOPS_PLOT, db=store) if SOP_METRIC in table.summary_columns else None
    if path is not None:
        figures.append(("SOPs", path, "final spikes per sample (on the validation split, or the training split "
                                      "without one), mean with ±1 std over repeats; "
                                      "labels: sop_ratio_vs_alif where the experiment has an ALIF trial"))
    return figures


REPORT_SECTIONS["convergence_and_sops"] = _report_section
