"""The Yin-Yang data set (Kriener, Göltz, Petrovici 2021, arXiv 2102.08211): points in the unit
square inside a yin-yang symbol, three classes (yin, yang, the two dots), made by the published
rejection-sampling generator (specs/first_spike.md)."""
from __future__ import annotations

import numpy as np
import torch

from data.base import DataShape, DataSplits, Dataset, Split
from settings import NonNegativeInt
from settings.registries import DATASETS

#: radius of the symbol and of its two dots (the square is [0, 2 R_BIG]^2 = [0, 1]^2)
R_BIG, R_SMALL = 0.5, 0.1
CLASSES = ("yang", "yin", "dot")  # int(is_yin) is 1: yin is class 1


def yinyang_class(x: float, y: float, r_big: float = R_BIG, r_small: float = R_SMALL) -> int:
    """The class of a point inside the big circle: 0 yang, 1 yin, 2 dot.

    ``d_right`` / ``d_left``: distances to the dot centres (1.5 R, R) and (0.5 R, R). Yin (1) is
    the right dot's disc, the ring around the left dot from r to R/2, and the upper half outside
    the circle of radius R/2 around the right dot; everything else is yang (0), except that a point
    closer than r to either dot centre is a dot (2), which overrides both.
    """
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    is_yin = d_right <= r_small or r_small < d_left <= 0.5 * r_big or (y > r_big and d_right > 0.5 * r_big)
    return int(is_yin)


def classify_points(points: np.ndarray, r_big: float = R_BIG, r_small: float = R_SMALL) -> np.ndarray:
    """:func:`yinyang_class` of every row of ``points`` ``[P, 2]`` (x, y): ``[P]`` int64."""
    x, y = points[:, 0], points[:, 1]
    d_right = np.hypot(x - 1.5 * r_big, y - r_big)
    d_left = np.hypot(x - 0.5 * r_big, y - r_big)
    is_yin = ((d_right <= r_small) | ((d_left > r_small) & (d_left <= 0.5 * r_big))
              | ((y > r_big) & (d_right > 0.5 * r_big)))
    return np.where((d_right < r_small) | (d_left < r_small), 2, is_yin.astype(np.int64)).astype(np.int64)


def generate(size: int, seed: int, r_big: float = R_BIG, r_small: float = R_SMALL) -> tuple[np.ndarray, np.ndarray]:
    """``size`` samples ``[size, 4]`` (x, y, 1 - x, 1 - y; float64) and labels ``[size]`` (int64)
    drawn from ``numpy.random.RandomState(seed)``: per sample a goal class ``randint(3)``, then
    points ``rand(2) * 2 R`` until one lies inside the big circle and has the goal class."""
    rng = np.random.RandomState(seed)
    samples = np.empty((size, 4), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            if yinyang_class(x, y, r_big, r_small) == goal:
                break
        samples[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = goal
    return samples, labels


@DATASETS.register
class YinYang(Dataset):
    """The Yin-Yang classification task: 4 features (x, y, 1 - x, 1 - y) in [0, 1], 3 classes
    (0 yang, 1 yin, 2 dot). Each split is generated from its own fixed seed, as published (train
    5000 / seed 42, validation 1000 / 41, test 1000 / 40); the run's seed does not change the
    data. The features are float64 (the generator's values; a float32 run casts the encoded times).

    Args:
        train_size: training samples.
        val_size: validation samples.
        test_size: test samples.
        train_seed: seed of the training split's generator.
        val_seed: seed of the validation split's generator.
        test_seed: seed of the test split's generator.
    """

    def __init__(self, train_size: NonNegativeInt = 5000, val_size: NonNegativeInt = 1000,
                 test_size: NonNegativeInt = 1000, train_seed: NonNegativeInt = 42, val_seed: NonNegativeInt = 41,
                 test_seed: NonNegativeInt = 40):
        self.train_size, self.val_size, self.test_size = train_size, val_size, test_size
        self.train_seed, self.val_seed, self.test_seed = train_seed, val_seed, test_seed

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        used = [key for key in ("train_seed", "val_seed", "test_seed")  # an empty split's seed draws nothing
                if params[key.replace("seed", "size")]]
        for i, key in enumerate(used):
            same = [other for other in used[:i] if params[other] == params[key]]
            if same:
                return [(key, f"must differ from {same[0]} (equal seeds give equal samples), got {params[key]}")]
        return []

    def shape(self) -> DataShape:
        return DataShape(samples=self.train_size + self.val_size + self.test_size, features=4, classes=len(CLASSES))

    def load(self, seed: int) -> DataSplits:
        parts, start = [], 0
        for size, part_seed in ((self.train_size, self.train_seed), (self.val_size, self.val_seed),
                                (self.test_size, self.test_seed)):
            x, y = generate(size, part_seed)
            # indices into the pool train + validation + test, so no two splits share one
            parts.append(Split(torch.as_tensor(x), torch.as_tensor(y), torch.arange(start, start + size)))
            start += size
        return DataSplits(*parts, n_classes=len(CLASSES))
