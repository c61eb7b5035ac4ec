"""scikit-learn's Digits: 1797 real 8x8 handwritten digits, shipped with the package (offline)."""
from __future__ import annotations

import numpy as np

from data.base import DataShape, Dataset
from settings import UnitInterval
from settings.registries import DATASETS


@DATASETS.register
class Digits(Dataset):
    """1797 images of 8x8 pixels (values 0..16), 10 classes, as 64 features scaled to [0, 1].

    Args:
        val_fraction: fraction for validation (stratified, seeded).
        test_fraction: fraction for testing.
        normalize: divide pixel values by 16.
    """

    def __init__(self, val_fraction: UnitInterval = 0.1, test_fraction: UnitInterval = 0.2, normalize: bool = True):
        self.val_fraction, self.test_fraction, self.normalize = val_fraction, test_fraction, normalize

    def shape(self) -> DataShape:
        return DataShape(samples=1797, features=64, classes=10)

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = bunch.data.astype(np.float32)
        return (x / 16.0 if self.normalize else x), bunch.target.astype(np.int64)
