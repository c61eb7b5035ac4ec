"""experiment.yaml ``loggers``: TensorBoard, the epoch profiler and W&B offline write what the
database holds, only when asked, and a logger that fails never costs the run."""
from __future__ import annotations

import gzip
import json
import math
import struct
import sys
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, write_experiment

import main
from experiment.store import RunStatus, SQLStore


def make(tmp_path: Path, loggers: str, repeat: int = 2, epochs: int = 2) -> tuple[Path, str, Path]:
    out = tmp_path / "out"
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG.replace("epochs: 2", f"epochs: {epochs}"),
                              "- name: a\n", experiment=f"name: tiny\nbase_dir: {out}\nrepeat: {repeat}\n"
                                                        f"mlflow: {{enabled: false}}\nloggers: {loggers}\n")
    return folder, f"sqlite:///{out / 'spikelab.db'}", out / "tiny"


def db_metrics(db: str) -> dict[str, dict[str, dict[int, float]]]:
    """output folder -> metric -> epoch -> value, as the database holds them."""
    store = SQLStore(db, readonly=True)
    try:
        exp = store.get_experiment("tiny")
        folders = {r.id: r.output_dir for r in store.runs(exp.id)}
        assert all(r.status == RunStatus.COMPLETED for r in store.runs(exp.id))
        found: dict[str, dict[str, dict[int, float]]] = {}
        for run_id, key, epoch, value in store.metrics(exp.id):
            found.setdefault(folders[run_id], {}).setdefault(key, {})[epoch] = value
        return found
    finally:
        store.close()


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def as_float32(value: float) -> float:
    """``value`` as TensorBoard stores a scalar (float32)."""
    import numpy as np

    return float(np.float32(value))


def test_tensorboard_events_hold_every_metric_of_every_epoch(tmp_path, capsys):
    folder, db, root = make(tmp_path, "{tensorboard: {histogram_every: 1}}")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    assert f"tensorboard --logdir {root.resolve()}" in capsys.readouterr().out
    expected = db_metrics(db)
    assert len(expected) == 2  # the repeats are separate runs, each with its own logdir
    for output_dir, metrics in expected.items():
        events = read_events(Path(output_dir) / "tb")
        assert {"lr", "train_loss", "val_acc", "val_acc/label_9"} <= set(metrics)
        for key, by_epoch in metrics.items():
            logged = dict(events[key])
            assert logged.keys() == by_epoch.keys() == {0, 1, 2}, key
            assert all(same(logged[epoch], as_float32(value)) for epoch, value in by_epoch.items()), key
        assert [step for step, _ in events["parameters/layers.0.weight"]] == [0, 1, 2]  # histograms
        assert "config/text_summary" in events  # the resolved config, as text
    store = SQLStore(db, readonly=True)
    kinds = {kind for run in store.runs(store.get_experiment("tiny").id) for kind, *_ in store.artifacts(run.id)}
    store.close()
    assert "tensorboard" in kinds


def test_profiler_files_for_the_chosen_epoch_only(tmp_path):
    folder, db, root = make(tmp_path, "{profile: {epochs: [2], steps: 2}}", repeat=1, epochs=3)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    run = root / "a" / "repeat_0"
    profiled = sorted(p.relative_to(run).as_posix() for p in (run / "profiler").rglob("*") if p.is_file())
    assert profiled == ["profiler/epoch_2/profiler_output.txt", "profiler/epoch_2/trace.json.gz"]
    text = (run / "profiler" / "epoch_2" / "profiler_output.txt").read_text()
    assert "top operators by self CPU time" in text and "CPU Mem" in text
    with gzip.open(run / "profiler" / "epoch_2" / "trace.json.gz", "rt") as fh:
        names = {e.get("name") for e in json.load(fh)["traceEvents"]}
    assert {"spikelab.forward", "spikelab.backward", "spikelab.optimizer"} <= names
    lines = [line for line in (run / "log.txt").read_text().splitlines() if "profile of epoch" in line]
    assert len(lines) == 1 and "profile of epoch 2: 2 batches in" in lines[0]
    for phase in ("data", "forward", "backward", "optimizer", "callbacks", "other"):
        assert f" {phase} " in lines[0]
    store = SQLStore(db, readonly=True)
    (record,) = store.runs(store.get_experiment("tiny").id)
    paths = [Path(path).name for kind, path, *_ in store.artifacts(record.id) if kind == "profile"]
    store.close()
    assert paths == ["profiler_output.txt", "trace.json.gz"]


def test_a_failing_logger_is_switched_off_once_and_the_run_goes_on(tmp_path, monkeypatch):
    from experiment.loggers.tensorboard import TensorBoardLogger

    calls = []

    def broken(self, state, epoch, metrics):
        calls.append(epoch)
        raise OSError("disk full")

    monkeypatch.setattr(TensorBoardLogger, "on_epoch_end", broken)
    folder, db, root = make(tmp_path, "{tensorboard: true}", repeat=1)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    assert calls == [0]  # off after its first error
    (metrics,) = db_metrics(db).values()
    assert all(by_epoch.keys() == {0, 1, 2} for by_epoch in metrics.values())
    log = (root / "a" / "repeat_0" / "log.txt").read_text()
    assert log.count("TensorBoard writer off for this run: on_epoch_end raised OSError: disk full") == 1
    assert "COMPLETED" in log


def test_a_missing_wandb_package_is_a_config_error_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now fails
    folder, db, root = make(tmp_path, "{wandb: {project: p}}")
    assert main.main(["run", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loggers.wandb" in err[0] and "pip install wandb" in err[0]
    assert not (tmp_path / "out").exists()


def test_wandb_offline_run_holds_the_metrics(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2

    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb_home"))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    folder, db, root = make(tmp_path, "{wandb: {project: p, mode: offline}}", repeat=1)
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    (metrics,) = db_metrics(db).values()
    (data,) = (root / "a" / "repeat_0" / "wandb").glob("offline-run-*/run-*.wandb")
    history, runs = {}, []
    for payload in wandb_records(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history[int(row["epoch"])] = row
        elif kind == "run":
            runs.append(record.run)
    first = runs[0]
    assert (first.project, first.run_group, first.job_type, first.display_name) == ("p", "tiny", "a", "a/repeat_0")
    assert history.keys() == {0, 1, 2}
    for key, by_epoch in metrics.items():
        assert all(same(float(history[epoch][key]), value) for epoch, value in by_epoch.items()), key


def wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B ``.wandb`` file: a 7-byte header, then LevelDB-style log blocks of
    32 KiB whose records carry a CRC (4 bytes), a length (2) and a type (1: whole, 2-4: first,
    middle, last piece of a record)."""
    raw, block, records, pending = path.read_bytes(), 32768, [], b""
    offset = 7
    while offset + 7 <= len(raw):
        room = block - offset % block
        if room < 7:  # the block's tail is padding
            offset += room
            continue
        _, length, kind = struct.unpack("<IHB", raw[offset:offset + 7])
        piece = raw[offset + 7:offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            continue
        pending += piece
        if kind in (1, 4):
            records.append(pending)
            pending = b""
    return records


def test_a_resumed_fit_shows_every_epoch_once_in_tensorboard(tmp_path):
    import shutil

    from testkit import make_pipeline

    from experiment.loggers.tensorboard import TensorBoardLogger
    from pipeline.callbacks import ModelCheckpoint
    from pipeline.callbacks.base import Callback

    class KeepAndInterrupt(Callback):
        """Keeps epoch 1's last.pt, then interrupts after epoch 2 (TensorBoard holds epochs past the copy)."""

        order = 60

        def on_epoch_end(self, state, epoch, metrics):
            if epoch == 1:
                shutil.copyfile(tmp_path / "checkpoints" / "last.pt", tmp_path / "epoch1.pt")
            if epoch == 2:
                raise KeyboardInterrupt

    config = TINY_CONFIG.replace("epochs: 2", "epochs: 3")
    with pytest.raises(KeyboardInterrupt):
        make_pipeline(config).fit(0, tmp_path, [ModelCheckpoint(), TensorBoardLogger(tmp_path / "tb"),
                                                KeepAndInterrupt()])
    result = make_pipeline(config).fit(0, tmp_path, [TensorBoardLogger(tmp_path / "tb")], resume=tmp_path / "epoch1.pt")
    logged = read_events(tmp_path / "tb")["train_loss"]  # the interrupted attempt's epoch 2 purged
    assert logged == [(int(row["epoch"]), as_float32(row["train_loss"])) for row in result.history]


def read_events(log_dir: Path) -> dict[str, list[tuple[int, object]]]:
    """tag -> [(step, value)] as TensorBoard serves them (its plugin event accumulator, which
    purges the events a resumed run replaced); scalars as floats, other tensors as arrays."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    events.Reload()
    found = {}
    for tag in events.Tags()["tensors"]:
        values = [(e.step, make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
        found[tag] = [(step, float(v) if v.ndim == 0 and v.dtype.kind == "f" else v) for step, v in values]
    return found
