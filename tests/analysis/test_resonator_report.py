"""The BRF paper's trial comparisons: the SOP ratio against the ALIF trial (hand-computed on a
synthetic frame and on a small database), the convergence and SOPs figures, and where they show
(``summarize``, the report, ``show``)."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest

import analysis
import main
from analysis.resonator_report import CONVERGENCE_PLOT, SOPS_PLOT
from analysis.stats import SOP_RATIO
from experiment.store import NewRun, RunStatus, SQLStore

KERNEL = "model.layers[0].kernel.type"
# trial -> (kernel type, final_spikes_per_sample of its COMPLETED repeats, test_acc per epoch of each repeat)
TRIALS = {
    "brf": ("BRFKernel", [10.0, 20.0], [[0.1, 0.6, 0.9], [0.1, 0.8, 0.9]]),
    "alif": ("ALIFKernel", [40.0, 60.0], [[0.1, 0.5, 0.8], [0.1, 0.3, 0.8]]),
    "rf": ("RFKernel", [30.0, 30.0], [[0.1, 0.2, 0.7], [0.1, 0.4, 0.7]]),
}


def runs_frame(kernels: dict[str, str]) -> pd.DataFrame:
    """A load_runs-like frame: two COMPLETED runs per trial (spikes from TRIALS), plus a FAILED
    run of the ALIF trial with 1000 spikes that must not count."""
    rows = [{"trial": trial, "status": "COMPLETED", KERNEL: kernels[trial], "final_spikes_per_sample": spikes}
            for trial, (_, values, _) in TRIALS.items() for spikes in values]
    rows.append({"trial": "alif", "status": "FAILED", KERNEL: kernels["alif"], "final_spikes_per_sample": 1000.0})
    return pd.DataFrame(rows)


def test_the_sop_ratio_divides_each_trials_mean_by_the_alif_trials_mean():
    ratio = analysis.sop_ratio_vs_alif(runs_frame({t: k for t, (k, _, _) in TRIALS.items()}))
    # means: brf 15, alif 50 (the FAILED 1000 left out), rf 30
    assert ratio.index.tolist() == ["brf", "alif", "rf"]
    assert ratio.tolist() == pytest.approx([0.3, 1.0, 0.6])
    assert ratio.name == SOP_RATIO


def test_several_alif_trials_are_pooled_and_without_one_there_is_no_ratio():
    frame = runs_frame({"brf": "BRFKernel", "alif": "ALIFKernel", "rf": "ALIFKernel"})
    assert analysis.alif_trials(frame) == ["alif", "rf"]
    assert analysis.sop_ratio_vs_alif(frame).tolist() == pytest.approx([15 / 40, 50 / 40, 30 / 40])
    assert analysis.sop_ratio_vs_alif(runs_frame({"brf": "BRFKernel", "alif": "LIFKernel", "rf": "RFKernel"})) is None
    assert analysis.sop_ratio_vs_alif(frame.drop(columns=KERNEL)) is None


def test_an_alif_trial_without_spikes_gives_nan_ratios():
    frame = runs_frame({t: k for t, (k, _, _) in TRIALS.items()})
    frame.loc[frame["trial"] == "alif", "final_spikes_per_sample"] = 0.0
    assert all(math.isnan(r) for r in analysis.sop_ratio_vs_alif(frame))


def build(url: str, kernels: dict[str, str]) -> None:
    """Experiment ``brf`` with the TRIALS: summaries and test_acc curves of two repeats each."""
    with SQLStore.create(url) as store:
        record = store.open_experiment("brf", "BRF against ALIF and RF", 7, "configs/brf", {}, {})
        for name, (_, spikes, curves) in TRIALS.items():
            config = {"model": {"layers": [{"type": "Recurrent", "kernel": {"type": kernels[name]}}]}, "epochs": 2}
            digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
            trial = store.upsert_trial(record.id, name, config, digest)
            for repeat, (value, curve) in enumerate(zip(spikes, curves)):
                [run] = store.ensure_runs(record.id, [NewRun(trial.id, digest, repeat, repeat, f"out/{name}/{repeat}")])
                attempt = store.claim_run(run.id, "testhost", 4242)
                for epoch, acc in enumerate(curve):
                    store.log_metrics(run.id, epoch, {"test_acc": acc, "spikes_per_sample": value})
                summary = {"final_test_acc": curve[-1], "final_spikes_per_sample": value, "n_params": 100.0,
                           "convergence_95": 2.0, "epochs": 2.0}
                store.finish_run(run.id, attempt.id, RunStatus.COMPLETED, summary=summary)


@pytest.fixture(scope="module")
def brf_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('brf') / 'brf.db'}"
    build(url, {t: k for t, (k, _, _) in TRIALS.items()})
    return url


@pytest.fixture(scope="module")
def no_alif_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('brf') / 'no_alif.db'}"
    build(url, {"brf": "BRFKernel", "alif": "LIFKernel", "rf": "RFKernel"})
    return url


def test_summarize_by_trial_appends_the_sop_ratio(brf_db: str, no_alif_db: str):
    table = analysis.summarize("brf", metrics=["final_spikes_per_sample"], db=brf_db)
    assert list(table.columns)[-1] == SOP_RATIO
    assert table[SOP_RATIO].tolist() == pytest.approx([0.3, 1.0, 0.6])
    assert SOP_RATIO not in analysis.summarize("brf", metrics=["final_test_acc"], db=brf_db).columns
    assert SOP_RATIO not in analysis.summarize("brf", db=no_alif_db).columns


def test_the_convergence_curves_and_the_sops_bars_are_drawn(brf_db: str, tmp_path: Path):
    curves = analysis.plot_convergence_curves("brf", tmp_path / "c.png", db=brf_db)
    sops = analysis.plot_sops("brf", tmp_path / "s.png", db=brf_db)
    for path in (curves, sops):
        assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000
    assert analysis.plot_convergence_curves("brf", tmp_path / "none.png", metric="val_acc", db=brf_db) is None
    with pytest.raises(ValueError, match="did you mean"):
        analysis.plot_sops("brf", tmp_path / "bad.png", metric="final_spikes_per_sampel", db=brf_db)


def test_the_report_shows_the_figures_and_the_ratio(brf_db: str, tmp_path: Path):
    index = analysis.build_report("brf", tmp_path / "report", db=brf_db)
    page = index.read_text(encoding="utf-8")
    for name in (CONVERGENCE_PLOT, SOPS_PLOT):
        assert (tmp_path / "report" / name).stat().st_size > 0 and f"src='{name}'" in page
    for column in (SOP_RATIO, "<th title='n_params'>", "<th title='convergence_95'>"):
        assert column in page


def test_show_prints_sizes_convergence_and_the_sop_ratio(brf_db: str, no_alif_db: str, capsys):
    assert main.main(["show", "brf", "--db", brf_db]) == 0
    out = capsys.readouterr().out
    assert "n_params" in out and "convergence_95" in out
    assert f"{SOP_RATIO} (mean final_spikes_per_sample / that of the ALIF trials): brf 0.3, alif 1, rf 0.6" in out
    assert main.main(["show", "brf", "--db", brf_db, "--json"]) == 0
    trials = json.loads(capsys.readouterr().out)["trials"]
    assert [t[SOP_RATIO] for t in trials] == pytest.approx([0.3, 1.0, 0.6])
    assert main.main(["show", "brf", "--db", no_alif_db]) == 0
    assert SOP_RATIO not in capsys.readouterr().out
