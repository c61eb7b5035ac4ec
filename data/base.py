"""Data sets: seeded, in memory, split into disjoint train / validation / test parts."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from settings.registries import DATASETS
from tools.seeding import derive_seed


@dataclass(frozen=True)
class Split:
    """Features ``x [P, F]`` (or a sequence per sample, ``[P, T, F]``), targets ``y`` (class
    indices ``[P]``, or one class per step ``[P, T]``), the indices of these samples in the pool,
    and for per-step targets the ``mask`` ``[P, T]`` (bool) of the steps that count (None: all)."""

    x: Tensor
    y: Tensor
    index: Tensor
    mask: Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DataShape:
    """What a data set holds, known before it is loaded: ``samples`` P, ``features`` F per sample
    and ``classes`` (the most class indices its labels can take)."""

    samples: int
    features: int
    classes: int
    steps: int | None = None  # time steps per sample of a sequence data set


@dataclass(frozen=True)
class DataSplits:
    train: Split
    val: Split
    test: Split
    n_classes: int
    input_kind: str = "features"  # "features" [P, F] (an encoder makes spikes) or "sequence" [P, T, F]
    target_kind: str = "class"  # "class" [P] or "per_step" [P, T]

    @property
    def n_features(self) -> int:
        return self.train.x.shape[-1]

    def items(self) -> list[tuple[str, Split]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]

    def sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.items()}


def split_indices(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                  stratify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / val / test index arrays covering ``range(len(labels))``.

    A seeded permutation; with ``stratify`` each class is split in the same proportions.
    """
    rng = np.random.default_rng(derive_seed(seed, "split"))
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else [np.arange(len(labels))]
    parts: list[list[np.ndarray]] = [[], [], []]
    for members in groups:
        members = rng.permutation(members)
        n_test = int(round(test_fraction * len(members)))
        n_val = int(round(val_fraction * len(members)))
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test:n_test + n_val])
        parts[0].append(members[n_test + n_val:])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)  # type: ignore[return-value]


def check_fractions(params: dict) -> list[tuple[str, str]]:
    total = params["val_fraction"] + params["test_fraction"]
    if total >= 1:
        return [("test_fraction", f"val_fraction + test_fraction must be < 1, got {total:g}")]
    return []


@DATASETS.set_base
class Dataset:
    """Base class: ``load(seed) -> DataSplits``. Subclasses with one pool of samples implement
    ``arrays(seed) -> (x [P, F], y [P])`` and get seeded, disjoint, stratified splits.

    ``input_kind``: ``features`` (``x [P, F]``, turned into spikes by the run's encoder) or
    ``sequence`` (``x [P, T, F]``, one input vector per time step, fed as it is).
    ``target_kind``: ``class`` (one label per sample) or ``per_step`` (``y [P, T]`` and a mask).
    ``run_files(seed)``: arrays a run must keep to be reproducible (a permutation), saved into its
    folder as ``<name>.npy``.
    """

    val_fraction: float = 0.0
    test_fraction: float = 0.0
    stratify: bool = True
    input_kind: str = "features"
    target_kind: str = "class"

    def run_files(self, seed: int) -> dict[str, np.ndarray]:
        return {}

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def shape(self) -> DataShape | None:
        """Sizes known without loading (used to check a run before it starts); None: unknown."""
        return None

    def load(self, seed: int) -> DataSplits:
        x, y = self.arrays(seed)
        parts = split_indices(y, self.val_fraction, self.test_fraction, seed, self.stratify)
        xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
        splits = [Split(xt[idx], yt[idx], torch.as_tensor(idx)) for idx in parts]
        return DataSplits(*splits, n_classes=int(y.max()) + 1, input_kind=self.input_kind,
                          target_kind=self.target_kind)

    check_params = staticmethod(check_fractions)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"
