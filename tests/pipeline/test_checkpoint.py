"""ModelCheckpoint files: safe to load (weights_only), refused when crafted, never left truncated."""
from __future__ import annotations

import os

import pytest
import torch
from testkit import TEMPOTRON_CONFIG, TINY_CONFIG, make_pipeline

from pipeline.callbacks import EarlyStopping, ModelCheckpoint
from pipeline.callbacks.checkpoint import CheckpointError, load_checkpoint, save_atomic


class WritesAMarker:
    """Unpickling this would call ``open(path, "w")``: the code a crafted checkpoint smuggles in."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def crafted_checkpoint(path, marker) -> None:
    torch.save({"epoch": 1, "seed": 0, "model": {}, "payload": WritesAMarker(str(marker))}, path)


def test_every_part_of_a_checkpoint_loads_with_weights_only(tmp_path):
    config = TEMPOTRON_CONFIG + "scheduler: {type: ReduceLROnPlateau, monitor: train_loss, mode: min}\n"
    make_pipeline(config).fit(seed=1, run_dir=tmp_path, callbacks=[ModelCheckpoint(monitor="train_acc"),
                                                                  EarlyStopping("train_loss", "min")])
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / "checkpoints" / name, weights_only=True)
        assert {"model", "optimizer", "scheduler", "rng", "generators", "history", "callbacks"} <= set(ckpt)
        assert ckpt["callbacks"]["EarlyStopping"]["wait"] >= 0
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 3


def test_the_global_random_states_survive_the_weights_only_format(tmp_path):
    import random

    import numpy as np

    from tools.seeding import rng_state, seed_everything, set_rng_state

    seed_everything(7)
    np.random.normal()  # numpy now holds a cached gaussian, part of its state
    torch.save({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.normal(), np.random.rand(3).tolist(), torch.rand(3).tolist()) == expected


def test_a_resumed_fit_restores_every_random_state(tmp_path):
    """A stochastic encoding redrawn every epoch and a shuffled training set give the same
    history resumed as uninterrupted."""
    config = TINY_CONFIG.replace("gain: 0.5}", "gain: 0.5}\nresample_encoding: true")
    full = make_pipeline(config, epochs=3).fit(seed=4, run_dir=tmp_path / "full", callbacks=[ModelCheckpoint()])
    make_pipeline(config, epochs=1).fit(seed=4, run_dir=tmp_path / "part", callbacks=[ModelCheckpoint()])
    resumed = make_pipeline(config, epochs=3).fit(seed=4, run_dir=tmp_path / "part", callbacks=[ModelCheckpoint()],
                                                  resume=tmp_path / "part" / "checkpoints" / "last.pt")
    strip = lambda hist: [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in hist]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)


def test_a_crafted_checkpoint_is_refused_and_its_code_never_runs(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "evil.pt"
    crafted_checkpoint(path, marker)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert not marker.exists()
    assert str(path) in message and "refused" in message and "\n" not in message


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "not_a_checkpoint"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_atomic({"epoch": 1, "seed": 0, "model": {"w": torch.zeros(100, 100)}}, path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"not a torch file at all")
    else:
        torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    save_atomic({"epoch": 1, "seed": 0, "model": {}}, path)

    def dies_halfway(obj, fh):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("killed during the save")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"epoch": 2, "seed": 0, "model": {}}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(path.parent) == ["last.pt", "last.pt.tmp"]  # only the temporary file is partial


def test_a_checkpoint_written_before_the_safe_format_still_loads(tmp_path):
    """Older checkpoints kept numpy's RNG state as numpy's own tuple (with an ndarray): that is
    data, not code, so they load, and their states restore."""
    import random

    import numpy as np

    from tools.seeding import set_rng_state

    np.random.seed(3)
    old_rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    expected = np.random.rand(2).tolist()
    torch.save({"epoch": 2, "seed": 0, "model": {}, "rng": old_rng}, tmp_path / "old.pt")
    set_rng_state(load_checkpoint(tmp_path / "old.pt")["rng"])
    assert np.random.rand(2).tolist() == expected
