"""The Yin-Yang data set: the published arrays bit for bit, the class rule at known points, the
fixed splits and their configuration."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data.yinyang import YinYang, classify_points, generate, yinyang_class
from settings.errors import ConfigError
from settings.registries import DATASETS
from settings.schema import build, validate

#: the published arrays (MIT), beside the repository: ../shared/data/yinyang/
PUBLISHED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "yinyang"
SPLITS = [("train", 5000, 42), ("validation", 1000, 41), ("test", 1000, 40)]


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"the published arrays are not in {PUBLISHED}")
@pytest.mark.parametrize("part,size,seed", SPLITS, ids=[s[0] for s in SPLITS])
def test_generator_reproduces_the_published_arrays_bit_for_bit(part, size, seed):
    samples, labels = generate(size, seed)
    published_samples = np.load(PUBLISHED / f"{part}_samples.npy")
    published_labels = np.load(PUBLISHED / f"{part}_labels.npy")
    assert samples.dtype == published_samples.dtype and labels.shape == published_labels.shape
    assert np.array_equal(samples, published_samples)
    assert np.array_equal(labels, published_labels)


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"the published arrays are not in {PUBLISHED}")
def test_registered_data_set_gives_the_published_splits():
    splits = build(validate({"type": "YinYang"}, DATASETS, "data"), DATASETS).load(seed=123)
    for (part, _, _), split in zip(SPLITS, (splits.train, splits.val, splits.test)):
        assert torch.equal(split.x, torch.as_tensor(np.load(PUBLISHED / f"{part}_samples.npy")))
        assert torch.equal(split.y, torch.as_tensor(np.load(PUBLISHED / f"{part}_labels.npy")))
    assert splits.sizes() == {"train": 5000, "val": 1000, "test": 1000}
    assert splits.n_classes == 3 and splits.n_features == 4


def test_class_rule_at_hand_picked_points():
    """R = 0.5, r = 0.1: dot centres (0.75, 0.5) right and (0.25, 0.5) left. Yin (1): the ring
    r..R/2 around the left dot and the upper half outside R/2 around the right dot; yang (0):
    the rest; dots (2) override both."""
    cases = {
        (0.75, 0.5): 2,   # right dot centre
        (0.25, 0.5): 2,   # left dot centre
        (0.75, 0.59): 2,  # 0.09 from the right dot
        (0.25, 0.41): 2,  # 0.09 from the left dot
        (0.75, 0.61): 0,  # 0.11 above the right dot: inside R/2 around it, yang although y > R
        (0.75, 0.39): 0,  # 0.11 below the right dot: yang
        (0.25, 0.62): 1,  # 0.12 from the left dot: its ring, yin
        (0.25, 0.30): 1,  # 0.2 below the left dot: its ring reaches below the middle, yin
        (0.25, 0.76): 1,  # 0.26 from the left dot (outside its ring) but y > R, far from the right dot
        (0.5, 0.9): 1,    # upper half, 0.47 from the right dot: yin
        (0.5, 0.1): 0,    # lower half, 0.47 from the left dot: yang
        (0.75, 0.2): 0,   # lower half, 0.3 below the right dot: yang
    }
    for (x, y), expected in cases.items():
        assert yinyang_class(x, y) == expected, (x, y)
    assert classify_points(np.array(list(cases))).tolist() == list(cases.values())


def test_class_rule_on_the_rim_of_a_dot():
    """``d_R <= r`` makes yin, but only ``d_R < r`` makes a dot: a point exactly on the right dot's
    rim is yin. With r = R/2 = 0.25 the point (1, 0.5) is exactly 0.25 from the right dot."""
    assert yinyang_class(1.0, 0.5, r_small=0.25) == 1
    assert classify_points(np.array([[1.0, 0.5]]), r_small=0.25).tolist() == [1]
    assert yinyang_class(0.99, 0.5, r_small=0.25) == 2


def test_vectorised_class_rule_equals_the_scalar_one_on_a_grid():
    g = np.linspace(0.0, 1.0, 101)
    points = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    assert classify_points(points).tolist() == [yinyang_class(x, y) for x, y in points]


def test_samples_lie_in_the_circle_with_flipped_features_and_balanced_goals():
    samples, labels = generate(600, seed=7)
    x, y = samples[:, 0], samples[:, 1]
    assert np.all(np.hypot(x - 0.5, y - 0.5) <= 0.5)
    assert np.array_equal(samples[:, 2], 1.0 - x) and np.array_equal(samples[:, 3], 1.0 - y)
    assert np.array_equal(classify_points(samples[:, :2]), labels)
    assert set(np.bincount(labels).tolist()) <= set(range(150, 251))  # goals drawn uniformly


def test_sizes_and_seeds_are_configurable_and_the_run_seed_changes_nothing():
    ds = YinYang(train_size=30, val_size=10, test_size=20, train_seed=1, val_seed=2, test_seed=3)
    a, b = ds.load(0), ds.load(99)
    assert a.sizes() == {"train": 30, "val": 10, "test": 20}
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert torch.equal(a.val.x, torch.as_tensor(generate(10, 2)[0]))
    assert a.train.index.tolist() == list(range(30)) and a.test.index.tolist() == list(range(40, 60))
    assert ds.shape().samples == 60 and ds.shape().features == 4 and ds.shape().classes == 3


def test_equal_split_seeds_are_a_config_error():
    message = r"data\.val_seed must differ from train_seed \(equal seeds give equal samples\), got 42"
    with pytest.raises(ConfigError, match=message):
        validate({"type": "YinYang", "val_seed": 42}, DATASETS, "data")
    assert validate({"type": "YinYang", "val_seed": 42, "val_size": 0}, DATASETS, "data")["val_size"] == 0
