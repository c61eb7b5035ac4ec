"""The report shows a first-spike run's figures (analysis/first_spike_plots.py, REPORT_SECTIONS):
one run per trial, copied next to the page; nothing for other experiments."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from testkit import write_experiment

import main
from analysis import first_spike_plots
from experiment.store import RunStatus
from pipeline.callbacks import first_spike_plots as drawn

YINYANG = """\
data: {type: YinYang, train_size: 60, val_size: 30, test_size: 45}
encoder: {type: LinearTimeEncoder}
model:
  layers:
    - {type: FirstSpikeLIF, out_features: 8, bias_times: [0.9], weight_init: {type: Normal, mean: 1.5, std: 0.8}}
    - {type: FirstSpikeLIF, out_features: 3, bias_times: [0.9], weight_init: {type: Normal, mean: 0.5, std: 0.8}}
  readout: SpikeTimeReadout
loss: TTFSLoss
optimizer: {type: Adam, lr: 0.005}
epochs: 1
batch_size: 30
"""


def test_the_report_lists_the_files_the_figures_are_drawn_to():
    assert {name for name, _, _ in first_spike_plots.FIGURES} == {
        drawn.DECISION_MAP, drawn.CONFUSION, drawn.OUTPUT_TIMES, drawn.HIDDEN_TIMES, drawn.WEIGHTS}
    assert first_spike_plots.MARKER == drawn.OUTPUT_TIMES


class Runs:
    """A store that knows some runs (what the report section asks it)."""

    def __init__(self, *runs: SimpleNamespace):
        self.list, self.asked = list(runs), []

    def runs(self, experiment_id, statuses=None):
        self.asked.append((experiment_id, list(statuses)))
        return self.list


def run_folder(path: Path, names=None) -> str:
    """A run folder whose plots/ holds stand-in figures (all of them unless ``names``)."""
    (path / "plots").mkdir(parents=True)
    for name in names if names is not None else [n for n, _, _ in first_spike_plots.FIGURES]:
        (path / "plots" / name).write_bytes(b"\x89PNG " + name.encode())
    return str(path)


def test_the_section_shows_the_lowest_completed_repeat_of_each_trial(tmp_path):
    store = Runs(SimpleNamespace(trial_name="b", repeat=1, output_dir=run_folder(tmp_path / "b1")),
                 SimpleNamespace(trial_name="a", repeat=2, output_dir=run_folder(tmp_path / "a2")),
                 SimpleNamespace(trial_name="a", repeat=1,
                                 output_dir=run_folder(tmp_path / "a1", [drawn.OUTPUT_TIMES])))
    figures = first_spike_plots._report_section(SimpleNamespace(id=7), tmp_path / "report", store)
    assert store.asked == [(7, [RunStatus.COMPLETED])]
    assert [title for title, _, _ in figures] == ["a, repeat 1: output spike times"] + [
        f"b, repeat 1: {title}" for _, title, _ in first_spike_plots.FIGURES]
    for _, path, _ in figures:
        assert path.parent == tmp_path / "report" / "first_spike"
        assert path.read_bytes() == b"\x89PNG " + path.name.split("_repeat_1_")[1].encode()  # a copy of the run's file


def test_a_run_without_first_spike_figures_adds_nothing(tmp_path):
    tempotron = run_folder(tmp_path / "t", ["learning_curves.png", "confusion_matrix.png"])
    assert first_spike_plots.first_spike_figures(tempotron) == []
    store = Runs(SimpleNamespace(trial_name="a", repeat=0, output_dir=tempotron))
    assert first_spike_plots._report_section(SimpleNamespace(id=1), tmp_path / "report", store) == []
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_the_report_of_a_first_spike_experiment_shows_its_figures(tmp_path, capsys):
    out = tmp_path / "out"
    folder = write_experiment(tmp_path / "yy", YINYANG, "- name: a\n", env="threads: 1\nT: 1\n",
                              experiment=f"name: yy\nbase_dir: {out}\nrepeat: 2\nmlflow: {{enabled: false}}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    report = tmp_path / "report"
    assert main.main(["report", "yy", "--db", f"sqlite:///{out / 'spikelab.db'}", "--out", str(report)]) == 0
    copied = sorted(p.name for p in (report / "first_spike").iterdir())
    assert copied == sorted(f"a_repeat_0_{name}" for name, _, _ in first_spike_plots.FIGURES)
    page = (report / "index.html").read_text()
    assert all(f"src='first_spike/{name}'" in page for name in copied) and "a, repeat 0: decision map" in page
