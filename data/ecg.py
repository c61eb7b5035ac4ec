"""ECG QT Database windows with a label per time step (the BRF paper's ECG task)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data.base import DataShape, DataSplits, Dataset, Split, split_indices
from settings import UnitInterval
from settings.registries import DATASETS

#: The copy committed with the project (MIT; see data/files/qtdb/NOTICE.md).
BUNDLED_DIR = Path(__file__).resolve().parent / "files" / "qtdb"
FILES = ("QTDB_train.mat", "QTDB_test.mat")
STEPS, CHANNELS, CLASSES = 1300, 4, 6


def read_qtdb(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One ``.mat`` file: inputs ``[n, 1300, 4]`` (float32 level-crossing spikes) and labels
    ``[n, 1300]`` (int64, -1 where a step carries no label); the last, padding step is dropped."""
    from scipy.io import loadmat

    mat = loadmat(path)
    x = mat["x"][:, :STEPS].astype(np.float32)
    onehot = mat["y"][:, :STEPS]
    labels = np.where(onehot.any(axis=-1), onehot.argmax(axis=-1), -1).astype(np.int64)
    return x, labels


@DATASETS.register
class ECGQTDB(Dataset):
    """ECG windows of the QT Database (Yin et al. 2021): 1300 steps of 4 level-crossing input
    channels, one of 6 wave classes (P, PQ, QR, RS, ST, TP) per step. 618 training windows
    (split into train and validation, seeded: 557 / 61 at the default ``val_fraction``) and 141
    test windows from their own file. Steps without a label are masked out of loss and accuracy;
    ``unlabeled_as_class0: true`` counts them as class 0, as the original code did silently.

    Args:
        data_dir: folder with ``QTDB_train.mat`` and ``QTDB_test.mat`` (default: the copy shipped
            in ``data/files/qtdb``).
        val_fraction: fraction of the training windows for validation.
        unlabeled_as_class0: count unlabeled steps as class 0 instead of masking them.
    """

    input_kind = "sequence"
    target_kind = "per_step"

    def __init__(self, data_dir: str | None = None, val_fraction: UnitInterval = 0.0987,
                 unlabeled_as_class0: bool = False):
        self.data_dir, self.val_fraction, self.unlabeled_as_class0 = data_dir, val_fraction, unlabeled_as_class0

    @property
    def folder(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else BUNDLED_DIR

    @staticmethod
    def check_params(params: dict) -> list[tuple[str, str]]:
        folder = Path(params["data_dir"]).expanduser() if params["data_dir"] else BUNDLED_DIR
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            return [("data_dir", f"has no {', '.join(missing)} (looked in {folder}); put the QTDB .mat files "
                                 "there (they come with the BRF reference code), or leave data_dir unset for the "
                                 "bundled copy")]
        return []

    def shape(self) -> DataShape:
        return DataShape(samples=759, features=CHANNELS, classes=CLASSES, steps=STEPS)

    def split(self, x: np.ndarray, y: np.ndarray, index: np.ndarray) -> Split:
        mask = y >= 0
        if self.unlabeled_as_class0:
            y, mask = np.where(mask, y, 0), np.ones_like(mask)
        return Split(torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(index), torch.as_tensor(mask))

    def load(self, seed: int) -> DataSplits:
        x, y = read_qtdb(self.folder / FILES[0])
        x_test, y_test = read_qtdb(self.folder / FILES[1])
        # the pool: the training file's windows, then the test file's (so indices never overlap)
        # a window's class for the split: its most frequent labelled class (windows are not all alike)
        majority = np.array([np.bincount(row[row >= 0], minlength=CLASSES).argmax() for row in y])
        train, val, _ = split_indices(majority, self.val_fraction, 0.0, seed, stratify=False)
        return DataSplits(self.split(x[train], y[train], train), self.split(x[val], y[val], val),
                          self.split(x_test, y_test, len(y) + np.arange(len(y_test))), n_classes=CLASSES,
                          input_kind=self.input_kind, target_kind=self.target_kind)
