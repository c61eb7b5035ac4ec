"""``python main.py eval RUN --split S --checkpoint epoch:N`` (the original's inference on a saved
net), the epoch checkpoints ModelCheckpoint keeps for it, the first-spike figures eval draws, and
``run --extend`` of a first-spike run."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from testkit import TINY_CONFIG, make_pipeline, write_experiment

import main
from pipeline.callbacks import ModelCheckpoint
from pipeline.callbacks import first_spike_plots as fsp

# a small Fast&Deep setup on a small Yin-Yang (4 -> 12 -> 3, tau_m = tau_s, TTFS loss)
YINYANG = """\
data: {type: YinYang, train_size: 150, val_size: 60, test_size: 90}
encoder: {type: LinearTimeEncoder}
model:
  layers:
    - {type: FirstSpikeLIF, out_features: 12, bias_times: [0.9], weight_init: {type: Normal, mean: 1.5, std: 0.8}}
    - {type: FirstSpikeLIF, out_features: 3, bias_times: [0.9], weight_init: {type: Normal, mean: 0.5, std: 0.8}}
  readout: SpikeTimeReadout
loss: TTFSLoss
optimizer: {type: Adam, lr: 0.005}
scheduler: {type: StepLR, step_size: 2, gamma: 0.9}
callbacks:
  - {type: WeightBumping, max_missing: [0.3, 0.0], bump: 0.0005}
  - {type: ModelCheckpoint, keep_every: 1}
epochs: 3
batch_size: 50
dtype: float64
"""
FIGURES = {fsp.OUTPUT_TIMES, fsp.HIDDEN_TIMES, fsp.WEIGHTS, fsp.CONFUSION, fsp.DECISION_MAP}


def experiment(tmp_path: Path, name: str, config: str = YINYANG, epochs: int = 3,
               plots: bool = True) -> tuple[Path, Path]:
    """The experiment folder and its one run's folder."""
    out = tmp_path / f"{name}_out"
    folder = write_experiment(tmp_path / name, config.replace("epochs: 3\n", f"epochs: {epochs}\n"), "- name: a\n",
                              env="threads: 1\nT: 1\n",  # no time grid: T only sizes the other models' grid
                              experiment=f"name: {name}\nbase_dir: {out}\nrepeat: 1\nmlflow: {{enabled: false}}\n"
                                         f"run_plots: {str(plots).lower()}\n")
    return folder, out / name / "a" / "repeat_0"


def recorded(run_dir: Path) -> dict[int, dict[str, float]]:
    """metrics.csv of a run by epoch (the values the run logged)."""
    with (run_dir / "metrics.csv").open() as handle:
        return {int(row["epoch"]): {k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def yinyang_run(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("eval")
    folder, run_dir = experiment(tmp_path, "yy")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    return run_dir


def test_keep_every_and_keep_save_the_epoch_checkpoints(tmp_path):
    pipe = make_pipeline(YINYANG.replace("keep_every: 1", "keep_every: 2, keep: [0, 3]"), epochs=4)
    pipe.fit(seed=0, run_dir=tmp_path)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*.pt"))
    assert kept == ["epoch_0.pt", "epoch_2.pt", "epoch_3.pt", "epoch_4.pt"]
    for name in kept:
        assert torch.load(tmp_path / "checkpoints" / name, weights_only=True)["epoch"] == int(name[6:-3])
    assert not ModelCheckpoint().keep and ModelCheckpoint().keep_every is None  # off unless asked


def test_eval_of_epoch_n_gives_the_metrics_that_epoch_recorded(yinyang_run, capsys):
    assert sorted(p.name for p in (yinyang_run / "checkpoints").glob("epoch_*.pt")) == [
        "epoch_1.pt", "epoch_2.pt", "epoch_3.pt"]
    history = recorded(yinyang_run)
    for split, epoch in (("test", 2), ("val", 1), ("train", 3)):
        capsys.readouterr()
        assert main.main(["eval", str(yinyang_run), "--split", split, "--checkpoint", f"epoch:{epoch}", "--json",
                          "--no-plots"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["epoch"] == epoch and result["checkpoint"].endswith(f"epoch_{epoch}.pt")
        assert result[f"{split}_acc"] == pytest.approx(history[epoch][f"{split}_acc"], abs=1e-12)
        assert result[f"{split}_loss"] == pytest.approx(history[epoch][f"{split}_loss"], rel=1e-9)
        assert result["plots"] == []
    assert history[1]["val_acc"] != history[3]["val_acc"] or history[1]["val_loss"] != history[3]["val_loss"]


def test_eval_draws_the_first_spike_figures_into_the_run_folder(yinyang_run, capsys, tmp_path):
    capsys.readouterr()
    assert main.main(["eval", str(yinyang_run), "--checkpoint", "epoch:2"]) == 0
    out = capsys.readouterr().out
    folder = yinyang_run / "plots" / "eval_test_epoch_2"
    assert {p.name for p in folder.iterdir()} == FIGURES
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in folder.iterdir())
    assert "(epoch 2), test split:" in out and f"in {folder}" in out
    assert main.main(["eval", str(yinyang_run), "--plots-dir", str(tmp_path / "mine"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {Path(p).name for p in result["plots"]} == FIGURES and all(Path(p).parent == tmp_path / "mine"
                                                                      for p in result["plots"])
    # the end of the run drew the same figures into plots/ (RunPlots)
    assert FIGURES <= {p.name for p in (yinyang_run / "plots").iterdir()}


def test_epoch_n_falls_back_to_best_or_last_and_names_what_is_kept(yinyang_run, capsys):
    (yinyang_run / "checkpoints" / "epoch_3.pt").rename(yinyang_run / "checkpoints" / "kept_aside.pt")
    try:
        capsys.readouterr()
        assert main.main(["eval", str(yinyang_run), "--checkpoint", "epoch:3", "--json", "--no-plots"]) == 0
        assert json.loads(capsys.readouterr().out)["checkpoint"].endswith(("best.pt", "last.pt"))  # both epoch 3
        assert main.main(["eval", str(yinyang_run), "--checkpoint", "epoch:7"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no checkpoint of epoch 7" in err
        assert "epoch_<N>.pt of epochs 1, 2" in err and "last.pt of epoch 3" in err and "keep_every" in err
        assert main.main(["eval", str(yinyang_run), "--checkpoint", "epoch:two"]) == 2
        assert "epoch:N needs a whole epoch number N >= 0, got epoch:two" in capsys.readouterr().err
    finally:
        (yinyang_run / "checkpoints" / "kept_aside.pt").rename(yinyang_run / "checkpoints" / "epoch_3.pt")


def test_eval_of_a_model_without_spike_times_draws_nothing(tmp_path, capsys):
    folder, run_dir = experiment(tmp_path, "tiny", TINY_CONFIG)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    capsys.readouterr()
    assert main.main(["eval", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plots"] == []
    assert not (run_dir / "plots" / "eval_test_epoch_2").exists()


def test_extending_a_first_spike_run_equals_an_uninterrupted_run(tmp_path, capsys):
    short, short_dir = experiment(tmp_path, "short", epochs=1, plots=False)
    assert main.main(["run", str(short), "--no-progress"]) == 0
    assert main.main(["run", str(short), "--no-progress", "--set", "epochs=3", "--extend"]) == 0
    full, full_dir = experiment(tmp_path, "full", epochs=3, plots=False)
    assert main.main(["run", str(full), "--no-progress"]) == 0
    times = ("epoch_time_s",)
    strip = lambda rows: {e: {k: v for k, v in r.items() if k not in times} for e, r in rows.items()}  # noqa: E731
    extended, fresh = strip(recorded(short_dir)), strip(recorded(full_dir))
    assert sorted(extended) == [0, 1, 2, 3]
    assert extended == fresh
    capsys.readouterr()
    assert main.main(["eval", str(short_dir), "--checkpoint", "epoch:3", "--json", "--no-plots"]) == 0
    assert json.loads(capsys.readouterr().out)["test_acc"] == pytest.approx(fresh[3]["test_acc"], abs=1e-12)
