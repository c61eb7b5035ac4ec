"""The Spiking Heidelberg Digits (SHD) from their HDF5 files, binned into spike-count sequences."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from data.base import DataShape, DataSplits, Dataset, Split, split_indices
from data.local import check_holdout, data_folder
from settings import PositiveFloat, UnitInterval
from settings.registries import DATASETS

FILES = ("shd_train.h5", "shd_test.h5")
UNITS, CLASSES = 700, 20
SOURCE = "https://zenkelab.org/datasets/"
#: bins of spikes counted at once while binning (bounds the temporary int64 counts to 128 MiB)
CHUNK_CELLS = 1 << 24


def read_shd(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One SHD file: per sample its spike times (s) and units (ragged, object arrays) and its label."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            missing = [key for key in ("spikes/times", "spikes/units", "labels") if key not in handle]
            if missing:
                raise ValueError(f"{path} is not an SHD file: it has no {', '.join(missing)}")
            times, units = handle["spikes/times"][:], handle["spikes/units"][:]
            labels = handle["labels"][:].astype(np.int64)
    except OSError as exc:
        raise ValueError(f"{path} cannot be read as HDF5: {exc}") from None
    if not len(times) == len(units) == len(labels):
        raise ValueError(f"{path} holds {len(times)} spike-time lists, {len(units)} unit lists and "
                         f"{len(labels)} labels; SHD has one of each per sample")
    return times, units, labels


def channel_map(drop_unit0: bool, reverse_channels: bool) -> np.ndarray:
    """``[700]``: the input channel of each unit, -1 for a unit left out."""
    channels = np.arange(UNITS) - (1 if drop_unit0 else 0)  # unit 0 -> -1 when dropped
    if reverse_channels:
        channels = np.where(channels >= 0, channels.max() - channels, -1)
    return channels


def bin_spikes(times: Sequence[np.ndarray], units: Sequence[np.ndarray], steps: int, dt_ms: float,
               channels: np.ndarray, binary: bool, source: Path | str = "the data") -> np.ndarray:
    """Dense ``[n, steps, C]`` uint8 spike counts of ``n`` samples: bin ``k`` holds the spikes at
    ``k * dt_ms <= 1000 t < (k + 1) * dt_ms`` (``t`` in s), in channel ``channels[unit]``
    (``C = channels.max() + 1``); spikes after the last bin or of a left-out unit (channel -1)
    are dropped. ``binary``: at most 1 per bin, else the count (at most 255)."""
    n, width = len(times), int(channels.max()) + 1
    out = np.zeros((n, steps, width), dtype=np.uint8)
    lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=n)
    chunk = max(1, CHUNK_CELLS // (steps * width))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        t = np.concatenate([np.asarray(a, dtype=np.float64) for a in times[start:stop]])
        unit = np.concatenate([np.asarray(a, dtype=np.int64) for a in units[start:stop]])
        if len(unit) != len(t):
            raise ValueError(f"{source}: a sample among {start}..{stop - 1} has unequal numbers of spike times "
                             "and units")
        if len(unit) and (unit.min() < 0 or unit.max() >= UNITS):
            raise ValueError(f"{source}: spike units must lie in 0..{UNITS - 1}, got {unit.min()}..{unit.max()}")
        sample = np.repeat(np.arange(stop - start), lengths[start:stop])
        step = np.floor(t * 1000.0 / dt_ms)
        channel = channels[unit]
        keep = (step >= 0) & (step < steps) & (channel >= 0)
        cell = (sample[keep] * steps + step[keep].astype(np.int64)) * width + channel[keep]
        counts = np.bincount(cell, minlength=(stop - start) * steps * width)
        out[start:stop] = np.minimum(counts, 1 if binary else 255).reshape(stop - start, steps, width)
    return out


@DATASETS.register
class SHD(Dataset):
    """Spiking Heidelberg Digits (Cramer et al. 2020): spoken digits 0-9 in English and German, 20
    classes, as the spikes of 700 cochlear units, binned into sequences of ``duration_ms / dt_ms``
    steps (250 of 4 ms by default) by 700 input channels (channel = unit). 8156 training samples
    (split into train and validation, stratified and seeded: 90/10 by default) and 2264 test
    samples from their own file. Inputs are stored as uint8 (1 byte per step and channel: 1.8 GB
    for all of SHD at the defaults), cast to the run's dtype one batch at a time.

    Args:
        data_dir: folder with ``shd_train.h5`` and ``shd_test.h5`` (default: ``$SPIKELAB_DATA/shd``,
            else ``data/raw/shd`` in the project).
        val_fraction: fraction of the training samples for validation.
        dt_ms: bin width in ms.
        duration_ms: the window binned, from 0, in ms (a multiple of ``dt_ms``); later spikes are dropped.
        binary: a bin holds 1 when its channel spiked in it at all; ``false``: the spike count (at most 255).
        drop_unit0: leave out unit 0 (699 channels), as the original code did.
        reverse_channels: reverse the channel order, as the original code did.
    """

    input_kind = "sequence"

    def __init__(self, data_dir: str | None = None, val_fraction: UnitInterval = 0.1, dt_ms: PositiveFloat = 4.0,
                 duration_ms: PositiveFloat = 1000.0, binary: bool = True, drop_unit0: bool = False,
                 reverse_channels: bool = False):
        self.data_dir, self.val_fraction, self.dt_ms, self.duration_ms = data_dir, val_fraction, dt_ms, duration_ms
        self.binary, self.drop_unit0, self.reverse_channels = binary, drop_unit0, reverse_channels

    @property
    def folder(self) -> Path:
        return data_folder(self.data_dir, "shd")

    @property
    def steps(self) -> int:
        return round(self.duration_ms / self.dt_ms)

    @staticmethod
    def missing(folder: Path) -> str | None:
        """Which files ``folder`` lacks and where to get them; None when both are there."""
        absent = [name for name in FILES if not (folder / name).is_file()]
        if not absent:
            return None
        return (f"has no {', '.join(absent)} (looked in {folder}); download SHD from {SOURCE}, gunzip it and put "
                f"{' and '.join(FILES)} into {folder}")

    @classmethod
    def check_params(cls, params: dict) -> list[tuple[str, str]]:
        if problem := cls.missing(data_folder(params["data_dir"], "shd")):
            return [("data_dir", problem)]
        ratio = params["duration_ms"] / params["dt_ms"]
        if abs(ratio - round(ratio)) > 1e-9 * ratio or round(ratio) < 1:
            return [("duration_ms", f"must be a whole number of dt_ms bins ({params['dt_ms']:g} ms), "
                                    f"got {params['duration_ms']:g}")]
        return check_holdout(params, "shd_train.h5")

    def shape(self) -> DataShape | None:
        if self.missing(self.folder):
            return None
        import h5py

        samples = 0
        for name in FILES:
            with h5py.File(self.folder / name, "r") as handle:
                samples += len(handle["labels"]) if "labels" in handle else 0
        return DataShape(samples=samples, features=UNITS - int(self.drop_unit0), classes=CLASSES, steps=self.steps)

    def load(self, seed: int) -> DataSplits:
        """Each split is binned straight from the spike lists (no dense copy of the whole file)."""
        if problem := self.missing(self.folder):
            raise FileNotFoundError(f"data_dir {problem}")
        channels = channel_map(self.drop_unit0, self.reverse_channels)
        train_path, test_path = (self.folder / name for name in FILES)
        times, units, labels = read_shd(train_path)
        test_times, test_units, test_labels = read_shd(test_path)
        for path, y in ((train_path, labels), (test_path, test_labels)):
            if len(y) and (y.min() < 0 or y.max() >= CLASSES):
                raise ValueError(f"{path}: labels must lie in 0..{CLASSES - 1}, got {y.min()}..{y.max()}")
        train, val, _ = split_indices(labels, self.val_fraction, 0.0, seed)

        def split(t: Sequence[np.ndarray], u: Sequence[np.ndarray], y: np.ndarray, index: np.ndarray,
                  source: Path) -> Split:
            x = bin_spikes(t, u, self.steps, self.dt_ms, channels, self.binary, source)
            return Split(torch.from_numpy(x), torch.as_tensor(y), torch.as_tensor(index))

        # the pool: the training file's samples, then the test file's (so indices never overlap)
        return DataSplits(split(times[train], units[train], labels[train], train, train_path),
                          split(times[val], units[val], labels[val], val, train_path),
                          split(test_times, test_units, test_labels, len(labels) + np.arange(len(test_labels)),
                                test_path),
                          n_classes=CLASSES, input_kind=self.input_kind, target_kind=self.target_kind)
