from __future__ import annotations

import numpy as np
import torch

from data.base import split_indices
from data.digits import Digits
from data.random_patterns import RandomDataset


def test_splits_are_disjoint_complete_and_seeded():
    labels = np.repeat(np.arange(4), 50)
    a = split_indices(labels, 0.1, 0.2, seed=3)
    b = split_indices(labels, 0.1, 0.2, seed=3)
    c = split_indices(labels, 0.1, 0.2, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    train, val, test = (set(p.tolist()) for p in a)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(range(200))
    assert len(test) == 40 and len(val) == 20
    assert np.bincount(labels[a[2]]).tolist() == [10, 10, 10, 10]  # stratified


def test_random_dataset_is_generated_from_the_seed():
    ds = RandomDataset(size=100, input_size=20)
    s1, s2, s3 = ds.load(1), ds.load(1), ds.load(2)
    assert torch.equal(s1.train.x, s2.train.x) and not torch.equal(s1.train.x, s3.train.x)
    assert s1.train.x.shape == (100, 20) and float(s1.train.x.min()) >= 0 and float(s1.train.x.max()) < 1
    assert set(s1.train.y.tolist()) == {0, 1} and len(s1.val) == 0 and len(s1.test) == 0


def test_digits_splits():
    splits = Digits(val_fraction=0.1, test_fraction=0.2).load(0)
    sizes = splits.sizes()
    assert sum(sizes.values()) == 1797 and splits.n_classes == 10 and splits.n_features == 64
    # stratified: per class round(0.2 n_c) for test and round(0.1 n_c) for val; class sizes
    # 178 182 177 183 181 182 181 179 174 180 give test 36+36+35+37+36+36+36+36+35+36 = 359 and
    # val 18 x 9 + 17 (class 8) = 179
    assert sizes == {"train": 1259, "val": 179, "test": 359}
    assert torch.bincount(splits.test.y, minlength=10).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    assert float(splits.train.x.max()) == 1.0
    idx = [set(s.index.tolist()) for _, s in splits.items()]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
