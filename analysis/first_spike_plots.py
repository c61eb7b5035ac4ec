"""The first-spike figures of an experiment's runs in its report (``REPORT_SECTIONS``).

A first-spike run draws its figures into ``plots/`` of its run folder at the end of the fit
(RunPlots; the drawing lives in pipeline/callbacks/first_spike_plots.py, which analysis does not
import). The report shows those of one run per trial: the COMPLETED run of the lowest repeat,
copied next to the page.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from analysis.report import REPORT_SECTIONS
from experiment.run_folder import RunFolder
from experiment.store import RunStatus

#: the files pipeline.callbacks.first_spike_plots writes, with a caption each, in report order
FIGURES = (
    ("decision_map.png", "decision map",
     "the class the network gives each cell of the unit square, the test points coloured by label, "
     "misclassified points circled"),
    ("confusion_matrix.png", "confusion matrix", "rows true class, columns predicted, with each class's accuracy"),
    ("output_spike_times.png", "output spike times",
     "per true class, every output neuron's spike time, samples sorted by the label neuron's; crosses: no spike"),
    ("hidden_spike_times.png", "hidden spike times", "histogram per hidden layer, with the silent fraction"),
    ("weight_histograms.png", "weights", "one histogram per parameter tensor"),
)
#: a file only first-spike runs have: a run folder without it is not one
MARKER = "output_spike_times.png"


def first_spike_figures(run_dir: str | Path) -> list[tuple[str, Path, str]]:
    """(title, file, caption) of the first-spike figures in a run folder's ``plots/``; [] for a run
    that is not first-spike (or drew no plots)."""
    plots = RunFolder(run_dir).plots
    if not (plots / MARKER).is_file():
        return []
    return [(title, plots / name, caption) for name, title, caption in FIGURES if (plots / name).is_file()]


def _report_section(record: Any, folder: Path, store: Any) -> list[tuple[str, Path, str]]:
    """Per trial, the figures of its COMPLETED run of the lowest repeat, copied into
    ``folder/first_spike/``."""
    chosen: dict[str, Any] = {}
    for run in sorted(store.runs(record.id, [RunStatus.COMPLETED]), key=lambda r: (r.trial_name, r.repeat)):
        chosen.setdefault(run.trial_name, run)
    figures = []
    for trial, run in chosen.items():
        for title, path, caption in first_spike_figures(run.output_dir):
            copy = folder / "first_spike" / f"{trial}_repeat_{run.repeat}_{path.name}"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            figures.append((f"{trial}, repeat {run.repeat}: {title}", copy, f"{caption} (test split, best epoch)"))
    return figures


REPORT_SECTIONS["first_spike"] = _report_section
