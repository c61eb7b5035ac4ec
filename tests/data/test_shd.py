"""SHD from small files in SHD's HDF5 layout written here: the binning checked against
hand-computed bins, the options, the splits, the errors, and the compact (uint8) inputs the
pipeline keeps as they are and casts one batch at a time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import write_shd, write_shd_folder

from data.shd import SHD
from settings.errors import ConfigError
from settings.registries import DATASETS
from settings.schema import validate

# one sample, its spikes as (time s, unit) -> at dt 4 ms over 1 s:
SPIKES = [(0.0035, 5),   # bin 0, channel 5
          (0.0039, 5),   # bin 0, channel 5 again: counts 2, binary 1
          (0.0041, 5),   # bin 1
          (0.0, 0),      # bin 0, channel 0 (unit 0 is kept)
          (0.999, 699),  # bin 249, channel 699
          (0.5, 3),      # bin 125
          (1.2, 7)]      # after the window: dropped


def one_sample_folder(folder: Path) -> Path:
    times, units = [t for t, _ in SPIKES], [u for _, u in SPIKES]
    write_shd(folder / "shd_train.h5", [times], [units], [3])
    write_shd(folder / "shd_test.h5", [[0.01]], [[1]], [4])
    return folder


def binned(folder: Path, **options) -> np.ndarray:
    return SHD(data_dir=str(folder), val_fraction=0.0, **options).load(0).train.x.numpy()[0]


def test_spikes_land_in_hand_computed_bins(tmp_path: Path) -> None:
    x = binned(one_sample_folder(tmp_path))
    assert x.shape == (250, 700) and x.dtype == np.uint8
    expected = np.zeros((250, 700), dtype=np.uint8)
    for step, channel in ((0, 5), (1, 5), (0, 0), (249, 699), (125, 3)):
        expected[step, channel] = 1
    assert np.array_equal(x, expected)  # binary: the two spikes of bin 0, channel 5 give 1; t = 1.2 dropped
    counts = binned(tmp_path, binary=False)
    assert counts[0, 5] == 2 and int(counts.sum()) == 6 and np.array_equal(counts > 0, expected > 0)
    test = SHD(data_dir=str(tmp_path), val_fraction=0.0).load(0).test.x.numpy()
    assert test.shape == (1, 250, 700) and test[0, 2, 1] == 1 and int(test.sum()) == 1  # t = 0.01 s: bin 2


def test_bin_width_window_and_channel_options(tmp_path: Path) -> None:
    one_sample_folder(tmp_path)
    x = binned(tmp_path, dt_ms=2.0, duration_ms=500.0)  # 250 bins of 2 ms: 0.0035, 0.0039 s in bin 1; 0.5 s out
    assert x.shape == (250, 700) and x[1, 5] == 1 and x[2, 5] == 1 and x[0, 0] == 1 and int(x.sum()) == 3
    assert binned(tmp_path, dt_ms=10.0).shape == (100, 700)
    dropped = binned(tmp_path, drop_unit0=True)  # 699 channels, channel = unit - 1
    assert dropped.shape == (250, 699) and dropped[0, 4] == 1 and dropped[249, 698] == 1 and int(dropped.sum()) == 4
    reversed_ = binned(tmp_path, reverse_channels=True)  # channel = 699 - unit
    assert reversed_[0, 694] == 1 and reversed_[249, 0] == 1 and reversed_[0, 699] == 1
    both = binned(tmp_path, drop_unit0=True, reverse_channels=True)  # channel = 699 - unit, unit 0 left out
    assert both.shape == (250, 699) and both[0, 694] == 1 and both[249, 0] == 1 and int(both.sum()) == 4
    shape = SHD(data_dir=str(tmp_path), drop_unit0=True, dt_ms=2.0, duration_ms=500.0).shape()
    assert (shape.samples, shape.features, shape.classes, shape.steps) == (2, 699, 20, 250)


def test_splits_are_stratified_disjoint_and_seeded(tmp_path: Path) -> None:
    write_shd_folder(tmp_path, n_train=200, n_test=20)  # 10 training samples per class
    splits = SHD(data_dir=str(tmp_path)).load(0)
    assert splits.sizes() == {"train": 180, "val": 20, "test": 20} and splits.n_classes == 20
    assert torch.bincount(splits.val.y, minlength=20).tolist() == [1] * 20
    assert splits.test.index.tolist() == list(range(200, 220)) and splits.input_kind == "sequence"
    ids = [set(s.index.tolist()) for _, s in splits.items()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert ids[0] | ids[1] == set(range(200))
    again, other = SHD(data_dir=str(tmp_path)).load(0), SHD(data_dir=str(tmp_path)).load(1)
    assert torch.equal(again.val.index, splits.val.index) and torch.equal(again.train.x, splits.train.x)
    assert not torch.equal(other.val.index, splits.val.index)
    whole = SHD(data_dir=str(tmp_path), val_fraction=0.0).load(0)
    rows = {int(i): row for i, row in zip(whole.train.index, whole.train.x)}
    assert all(torch.equal(rows[int(i)], row) for i, row in zip(splits.val.index, splits.val.x))  # binned alike
    assert SHD(data_dir=str(tmp_path), val_fraction=0.3).load(0).sizes() == {"train": 140, "val": 60, "test": 20}


def test_missing_files_and_bad_options_are_one_line_config_errors(tmp_path: Path) -> None:
    write_shd(tmp_path / "shd_train.h5", [[0.1]], [[1]], [0])
    with pytest.raises(ConfigError) as info:
        validate({"type": "SHD", "data_dir": str(tmp_path)}, DATASETS, "data")
    message = str(info.value)
    assert (f"data.data_dir has no shd_test.h5 (looked in {tmp_path}); download SHD from "
            "https://zenkelab.org/datasets/, gunzip it and put shd_train.h5 and shd_test.h5 into "
            f"{tmp_path}") in message
    with pytest.raises(FileNotFoundError, match="has no shd_test.h5"):
        SHD(data_dir=str(tmp_path)).load(0)
    assert SHD(data_dir=str(tmp_path)).shape() is None
    write_shd(tmp_path / "shd_test.h5", [[0.1]], [[1]], [0])
    with pytest.raises(ConfigError, match=r"data.duration_ms must be a whole number of dt_ms bins \(3 ms\), got 1000"):
        validate({"type": "SHD", "data_dir": str(tmp_path), "dt_ms": 3.0, "duration_ms": 1000.0}, DATASETS, "data")
    with pytest.raises(ConfigError, match=r"data.val_fraction must be < 1 \(the rest of shd_train.h5 trains\)"):
        validate({"type": "SHD", "data_dir": str(tmp_path), "val_fraction": 1.0}, DATASETS, "data")


def test_files_outside_the_schema_are_clear_errors(tmp_path: Path) -> None:
    import h5py

    write_shd(tmp_path / "shd_test.h5", [[0.1]], [[1]], [0])
    with h5py.File(tmp_path / "shd_train.h5", "w") as handle:
        handle.create_dataset("labels", data=np.zeros(1, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"shd_train.h5 is not an SHD file: it has no spikes/times, spikes/units"):
        SHD(data_dir=str(tmp_path)).load(0)
    write_shd(tmp_path / "shd_train.h5", [[0.1]], [[700]], [0])
    with pytest.raises(ValueError, match=r"spike units must lie in 0..699, got 700..700"):
        SHD(data_dir=str(tmp_path), val_fraction=0.0).load(0)
    write_shd(tmp_path / "shd_train.h5", [[0.1]], [[1]], [20])
    with pytest.raises(ValueError, match=r"labels must lie in 0..19, got 20..20"):
        SHD(data_dir=str(tmp_path), val_fraction=0.0).load(0)
    (tmp_path / "shd_train.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"shd_train.h5 cannot be read as HDF5"):
        SHD(data_dir=str(tmp_path)).load(0)


def test_the_pipeline_keeps_the_uint8_inputs_and_casts_each_batch(tmp_path: Path) -> None:
    from testkit import make_pipeline

    write_shd_folder(tmp_path / "shd", n_train=60, n_test=20)
    pipe = make_pipeline(f"""\
data: {{type: SHD, data_dir: {tmp_path / 'shd'}, duration_ms: 100.0}}
model:
  layers: [{{type: Recurrent, out_features: 4, kernel: LIFKernel}}]
  readout: {{type: LeakyIntegrator, out_features: 20}}
loss: {{type: SequenceNLL, mode: mean}}
optimizer: {{type: Adam, lr: 0.01}}
epochs: 1
batch_size: 16
""")
    splits, encoded, model = pipe.prepare(0)
    inputs = encoded["train"].inputs
    assert inputs.dtype == torch.uint8 and inputs.shape == (25, len(splits.train), 700)  # [T, P, F]
    x, y, _ = encoded["train"].batch(torch.tensor([0, 2]))
    assert x.dtype == torch.float32 and torch.equal(x, splits.train.x[[0, 2]].transpose(0, 1).float())
    result = pipe.fit(seed=0)
    assert [h["epoch"] for h in result.history] == [0, 1] and np.isfinite(result.history[-1]["train_loss"])
