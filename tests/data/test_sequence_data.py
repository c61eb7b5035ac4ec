"""Sequence data sets: SequentialDigits (one pixel per step, optional fixed permutation saved with
the run) and ECGQTDB (a label per step, unlabeled steps masked)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data.digits import Digits, SequentialDigits
from data.ecg import ECGQTDB


def test_sequential_digits_feeds_the_image_one_pixel_per_step() -> None:
    flat = Digits(0.1, 0.2).load(5)
    seq = SequentialDigits(0.1, 0.2).load(5)
    assert seq.train.x.shape == (len(flat.train), 64, 1) and seq.input_kind == "sequence"
    assert torch.equal(seq.train.x[:, :, 0], flat.train.x) and torch.equal(seq.train.y, flat.train.y)


def test_the_permutation_is_fixed_seeded_applied_and_saved_with_the_run(tmp_path: Path) -> None:
    from testkit import make_pipeline

    data = SequentialDigits(0.1, 0.2, permute=True)
    order = data.permutation(1)
    assert sorted(order.tolist()) == list(range(64)) and not np.array_equal(order, np.arange(64))
    assert np.array_equal(order, data.permutation(2))  # one permutation for every run (PS-MNIST)
    per_run = SequentialDigits(0.1, 0.2, permute=True, permutation_seed=None)
    assert not np.array_equal(per_run.permutation(1), per_run.permutation(2))
    flat, seq = Digits(0.1, 0.2).load(1), data.load(1)
    assert torch.equal(seq.train.x[:, :, 0], flat.train.x[:, order])
    pipe = make_pipeline("""\
data: {type: SequentialDigits, val_fraction: 0.1, test_fraction: 0.2, permute: true}
model:
  layers: [{type: Recurrent, out_features: 4, kernel: LIFKernel}]
  readout: {type: LeakyIntegrator, out_features: 10}
loss: {type: SequenceNLL, mode: last}
optimizer: {type: Adam, lr: 0.01}
epochs: 0
""")
    pipe.fit(seed=1, run_dir=tmp_path)
    assert np.array_equal(np.load(tmp_path / "permutation.npy"), order)


def test_ecg_splits_masks_and_the_class0_option() -> None:
    splits = ECGQTDB().load(0)
    assert splits.sizes() == {"train": 557, "val": 61, "test": 141}
    assert splits.train.x.shape == (557, 1300, 4) and splits.train.y.shape == (557, 1300)
    assert splits.target_kind == "per_step" and splits.n_classes == 6
    unlabeled = 1 - float(splits.train.mask.float().mean())
    assert 0.07 < unlabeled < 0.10  # specs/datasets.md: about 8% (train), 10% (test)
    assert bool((splits.train.y[~splits.train.mask] == -1).all())
    again = ECGQTDB().load(0)
    assert torch.equal(again.val.index, splits.val.index)  # seeded
    counted = ECGQTDB(unlabeled_as_class0=True).load(0)
    assert bool(counted.train.mask.all()) and int((counted.train.y == -1).sum()) == 0
    assert torch.equal(counted.train.y[~splits.train.mask], torch.zeros(int((~splits.train.mask).sum()), dtype=torch.long))


def test_a_missing_ecg_folder_is_a_config_error_naming_the_files(tmp_path: Path) -> None:
    from settings.errors import ConfigError
    from settings.registries import DATASETS
    from settings.schema import validate

    with pytest.raises(ConfigError) as info:
        validate({"type": "ECGQTDB", "data_dir": str(tmp_path)}, DATASETS, "data")
    message = str(info.value)
    assert "data.data_dir has no QTDB_train.mat, QTDB_test.mat" in message and str(tmp_path) in message
