"""Images fed as sequences, one pixel per time step: sequential (S-) and permuted sequential (PS-)
image tasks, shared by SequentialDigits and the sequential MNIST data sets."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from data.base import DataShape
from tools.seeding import derive_seed


class PixelSequence:
    """Mixin in front of an image data set (``class SequentialX(PixelSequence, X)``): each image of
    ``pixels`` pixels becomes ``pixels`` time steps of one input feature, row by row, the class read
    at the end. With ``permute`` one fixed, seeded permutation of the pixel positions is applied to
    every image; it is saved into each run folder as ``permutation.npy``.

    The data set sets ``pixels`` (a class attribute or a property), ``permute`` and
    ``permutation_seed`` (``None``: derived from each run's seed).
    """

    input_kind = "sequence"
    pixels: int
    permute: bool = False
    permutation_seed: int | None = 0

    def permutation(self, seed: int) -> np.ndarray:
        """The pixel order: ``x_seq[t] = image[permutation[t]]`` (the identity without ``permute``)."""
        if not self.permute:
            return np.arange(self.pixels)
        key = self.permutation_seed if self.permutation_seed is not None else derive_seed(seed, "permutation")
        return np.random.default_rng(key).permutation(self.pixels)

    def as_sequence(self, x: np.ndarray, seed: int) -> np.ndarray:
        """Flat images ``[P, pixels]`` -> sequences ``[P, pixels, 1]`` in the permutation's order."""
        return x[:, self.permutation(seed), None]

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = super().arrays(seed)  # type: ignore[misc]
        return self.as_sequence(x, seed), y

    def shape(self) -> DataShape | None:
        flat = super().shape()  # type: ignore[misc]
        return None if flat is None else replace(flat, features=1, steps=flat.features)

    def run_files(self, seed: int) -> dict[str, np.ndarray]:
        return {"permutation": self.permutation(seed)} if self.permute else {}
