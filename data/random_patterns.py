"""Random patterns with random labels (the tempotron capacity task)."""
from __future__ import annotations

import numpy as np

from data.base import DataShape, Dataset
from settings import PositiveInt, UnitInterval
from settings.registries import DATASETS
from tools.seeding import derive_seed


@DATASETS.register
class RandomDataset(Dataset):
    """``size`` patterns of ``input_size`` values drawn U[0, 1], labels 1 ("fire") with probability
    ``label_prob`` else 0, generated in memory from the run's seed.

    The task is memorisation: keep the fractions at 0 and report training accuracy.

    Args:
        size: number of patterns P.
        input_size: number of afferents N.
        label_prob: probability of label 1.
        val_fraction: fraction held out for validation.
        test_fraction: fraction held out for testing.
    """

    def __init__(self, size: PositiveInt = 1000, input_size: PositiveInt = 500, label_prob: UnitInterval = 0.5,
                 val_fraction: UnitInterval = 0.0, test_fraction: UnitInterval = 0.0):
        self.size, self.input_size, self.label_prob = size, input_size, label_prob
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.stratify = False

    def shape(self) -> DataShape:
        return DataShape(samples=self.size, features=self.input_size, classes=2 if self.label_prob > 0 else 1)

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(derive_seed(seed, "data"))
        x = rng.random((self.size, self.input_size), dtype=np.float64).astype(np.float32)
        y = (rng.random(self.size) < self.label_prob).astype(np.int64)
        return x, y
