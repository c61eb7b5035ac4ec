"""The original framework's four files (shared/specs/legacy_yaml.md) run as they are, through a
translation into the native schema that ``config --native`` prints."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import main
from settings.errors import ConfigError
from settings.legacy import is_legacy, translate
from settings.yaml_io import parse_yaml

# the framework's README example, keys, nesting and values as it shows them
CONFIG = """\
model:
  type: "Network"
  layers:
    - name: "input_layer"
      input_size: 500
      output_size: 1
      kernel:
        type: "DENKernel"
        n: 500
        tau_s: 15
        tau_m: 3.75

optimizer:
  type: MomentumOptimizer
  lr: 100
  momentum: 0.99

lr_scheduler:
  type: StepLR
  args:
    step_size: 50
    gamma: 0.9

dataset:
  type: "RandomDataset"
  input_size: 500
  len: 1000
  encoder:
    type: "LatencyEncoder"
    size: 500

pipeline:
  type: "TrainingPipeline"
  epochs: 5
  batch_size: 64
  validation_split: 0.2
  callbacks:
    - type: "MetricsTracker"
    - type: "EarlyStopping"
      metric: "val_loss"
      patience: 3
    - type: "MLflowCallback"
      experiment_name: "experiment_1"
"""
ENV = """\
T: 500          # simulation duration (ms)
dt: 1.0         # time step (ms)
v_th: 1.0       # threshold
v_reset: 0.0    # reset voltage
v_0: 2.12       # kernel scale (the DEN kernel's V0)
device: "cpu"
"""
EXPERIMENT = """\
name: "experiment_name"
desc: "Experiment description"
base_dir: "./outputs"
db_path: "./outputs/db/experiment.db"
"""
TRIALS = """\
- name: "trial_1"
  repeat: 1
  settings:
    dataset:
      len: 1000
"""
FILES = {"config.yaml": CONFIG, "env.yaml": ENV, "experiment.yaml": EXPERIMENT, "trials.yaml": TRIALS}
NOTE = "note: outputs/experiment_name is in the original framework's layout"


def write_files(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def metric_rows(db_file: Path) -> dict[tuple[str, str, int], float]:
    with sqlite3.connect(db_file) as con:
        rows = con.execute("SELECT t.name, k.name, m.epoch, m.value FROM metric m JOIN metric_key k ON k.id = m.key_id "
                           "JOIN run r ON r.id = m.run_id JOIN trial t ON t.id = r.trial_id")
        return {(trial, key, epoch): value for trial, key, epoch, value in rows if key != "epoch_time_s"}


def native_sections(text: str) -> dict[str, str]:
    """``config --native`` output: one ``# <file>`` header per file, its YAML below."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# ") and line[2:].endswith(".yaml"):
            current = sections.setdefault(line[2:], [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) + "\n" for name, lines in sections.items()}


def test_the_example_runs_as_it_is_and_its_native_translation_gives_the_same_metrics(tmp_path, monkeypatch, capsys):
    legacy = tmp_path / "legacy"
    write_files(legacy / "outputs" / "experiment_name" / "config", FILES)
    monkeypatch.chdir(legacy)
    assert main.main(["run", "outputs/experiment_name", "--no-progress", "--no-mlflow"]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("note:")] == [
        NOTE + "; read through its translation into the native schema (docs/legacy_yaml.md; `python main.py config "
               "outputs/experiment_name --native` prints it)"]
    assert "done trial_1/repeat_0" in captured.out
    db_file = legacy / "outputs" / "db" / "experiment.db"  # db_path
    with sqlite3.connect(db_file) as con:
        assert con.execute("SELECT t.name, r.status FROM run r JOIN trial t ON t.id = r.trial_id").fetchall() == [
            ("trial_1", "COMPLETED")]
    legacy_metrics = metric_rows(db_file)
    assert {("trial_1", "val_loss", epoch) for epoch in range(3)} <= set(legacy_metrics)  # EarlyStopping may end it
    assert (legacy / "outputs" / "experiment_name" / "trial_1" / "repeat_0" / "checkpoints" / "last.pt").is_file()

    assert main.main(["config", "outputs/experiment_name", "--native"]) == 0
    sections = native_sections(capsys.readouterr().out)
    assert set(sections) == set(FILES)
    config = parse_yaml(sections["config.yaml"])
    assert config["model"] == {"layers": [{"type": "Dense", "out_features": 1,
                                           "kernel": {"type": "DENKernel", "tau_s": 15, "tau_m": 3.75}}],
                               "readout": "MaxMembrane"}
    assert config["data"] == {"type": "RandomDataset", "input_size": 500, "size": 1000, "val_fraction": 0.2}
    assert config["scheduler"] == {"type": "StepLR", "step_size": 50, "gamma": 0.9, "interval": "batch"}
    assert config["callbacks"] == [{"type": "EarlyStopping", "patience": 3, "monitor": "val_loss", "mode": "min"}]
    assert (config["loss"], config["learning_rule"], config["epochs"], config["batch_size"]) == (
        "BinaryLoss", "SingleSpikeLR", 5, 64)
    assert parse_yaml(sections["experiment.yaml"])["db"] == "sqlite:///outputs/db/experiment.db"

    native = tmp_path / "native"
    write_files(native / "exp", sections)
    monkeypatch.chdir(native)
    assert main.main(["run", "exp", "--no-progress", "--no-mlflow"]) == 0
    assert "note:" not in capsys.readouterr().err  # a native folder: no notice
    assert metric_rows(native / "outputs" / "db" / "experiment.db") == legacy_metrics


def test_trial_settings_in_the_original_keys_become_native_settings():
    config, env = parse_yaml(CONFIG), parse_yaml(ENV)
    trials = [{"name": "small", "settings": {"dataset": {"len": 200},
                                             "pipeline": {"epochs": 2, "validation_split": 0.1}}},
              {"name": "same", "settings": {"dataset": {"len": 1000}}}]
    translated = translate(parse_yaml(EXPERIMENT), config, env, trials)
    assert translated.trials == [{"name": "small", "settings": {"data": {"size": 200, "val_fraction": 0.1},
                                                                "epochs": 2}},
                                 {"name": "same"}]
    assert translated.experiment["mlflow"] == {"enabled": True}  # the MLflowCallback
    assert is_legacy(config, {}) and is_legacy({}, {"db_path": "x.db"}) and not is_legacy({"data": {}}, {})
    native_network = {"model": {"type": "Network", "layers": [{"type": "Dense", "out_features": 3}]}}
    assert not is_legacy(native_network, {})  # the native model is a Network too


def test_a_folder_with_only_db_path_keeps_its_native_config():
    config = {"data": {"type": "Digits"}, "model": {"layers": [{"type": "Dense", "out_features": 3}]},
              "loss": "CrossEntropyLoss", "optimizer": "Adam"}
    translated = translate({"name": "x", "db_path": "db/x.db"}, config, {}, None)
    assert translated.config == config and translated.experiment == {"name": "x", "db": "sqlite:///db/x.db"}


def test_translation_problems_are_reported_at_once_with_their_path():
    config = parse_yaml(CONFIG)
    config["model"]["type"] = "Netwrok"
    config["model"]["layers"][0]["kernel"]["n"] = 400
    config["pipeline"]["type"] = "Pipeline"
    with pytest.raises(ConfigError) as caught:
        translate({}, config, {}, None)
    lines = str(caught.value).splitlines()
    assert any("model.type is not a network type of the original framework: got 'Netwrok'" in line for line in lines)
    assert any("model.layers[0].kernel.n must equal model.layers[0].input_size (500), got 400" in line
               for line in lines)
    assert any("pipeline.type is not a pipeline of the original framework" in line for line in lines)


def test_early_stopping_min_delta_percent_is_relative_in_percent():
    from pipeline.callbacks import EarlyStopping

    stop = EarlyStopping(monitor="val_loss", mode="min", patience=1, min_delta_percent=10.0)
    stop.best = 2.0
    assert not stop.improved(1.85) and stop.improved(1.79)  # 10% of 2.0 is 0.2
    growing = EarlyStopping(monitor="val_acc", mode="max", min_delta_percent=1.0)
    growing.best = 0.5
    assert not growing.improved(0.504) and growing.improved(0.506)


def test_the_newer_layout_base_yaml_runs_with_config_dir(tmp_path, monkeypatch, capsys):
    files = {("base.yaml" if name == "config.yaml" else name): text for name, text in FILES.items()}
    write_files(tmp_path / "cfg", files)
    monkeypatch.chdir(tmp_path)
    assert main.main(["--config-dir", "cfg", "--no-progress", "--no-mlflow", "--set", "epochs=1"]) == 0
    assert "done trial_1/repeat_0" in capsys.readouterr().out
    saved = tmp_path / "outputs" / "experiment_name" / "config"
    assert (saved / "base.yaml").is_file() and not (saved / "config.yaml").exists()
    assert main.main(["run", "outputs/experiment_name", "--no-progress", "--no-mlflow"]) == 0  # the saved copy
    assert "skipping 1 completed run(s)" in capsys.readouterr().out
