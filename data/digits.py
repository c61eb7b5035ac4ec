"""scikit-learn's Digits: 1797 real 8x8 handwritten digits, shipped with the package (offline)."""
from __future__ import annotations

import numpy as np

from data.image_table import ImageTable, packaged_table
from data.pixel_sequence import PixelSequence
from settings import UnitInterval
from settings.registries import DATASETS


def _digits_table() -> np.ndarray:
    """The ``[1797, 65]`` table of scikit-learn's digits.csv.gz (64 pixels, then the label), read
    the way ``sklearn.datasets.load_digits`` reads it but without importing scikit-learn and
    scipy (1.5 s before a run's first epoch); ``load_digits`` where the file is not found."""
    table = packaged_table("sklearn", "datasets/data/digits.csv.gz")
    if table is not None:
        return table
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


@DATASETS.register
class Digits(ImageTable):
    """1797 images of 8x8 pixels (values 0..16), 10 classes, as 64 features scaled to [0, 1]
    (``layout: image``: as images ``[1, 8, 8]``, for models that take images).

    Args:
        val_fraction: fraction for validation (stratified, seeded).
        test_fraction: fraction for testing.
        normalize: divide pixel values by 16.
        layout: ``flat`` (64 features) or ``image`` (``[C, H, W] = [1, 8, 8]``).
    """

    samples, pixels, image_shape, max_value = 1797, 64, (1, 8, 8), 16.0

    def table(self) -> np.ndarray:
        return _digits_table()


@DATASETS.register
class SequentialDigits(PixelSequence, Digits):
    """The Digits images as sequences: 64 time steps, one pixel per step (row by row; one input
    feature), the class read at the end: the small twin of sequential MNIST. ``permute: true``
    applies one fixed, seeded permutation of the 64 pixel positions to every image (the twin of
    permuted sequential MNIST); the permutation is saved into each run folder as
    ``permutation.npy``.

    Args:
        val_fraction: fraction for validation (stratified, seeded).
        test_fraction: fraction for testing.
        normalize: divide pixel values by 16.
        permute: permute the pixel order.
        permutation_seed: the permutation's seed (the same for every run, as in PS-MNIST);
            ``null`` derives it from each run's seed.
    """

    pixels = 64

    def __init__(self, val_fraction: UnitInterval = 0.1, test_fraction: UnitInterval = 0.2, normalize: bool = True,
                 permute: bool = False, permutation_seed: int | None = 0):
        super().__init__(val_fraction, test_fraction, normalize)
        self.permute, self.permutation_seed = permute, permutation_seed
