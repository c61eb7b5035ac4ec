"""Small data files in the official formats, written by the tests themselves: IDX (MNIST,
Fashion-MNIST) and SHD's HDF5 layout."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` in the IDX format: 00 00 <type> <ndim>, the sizes as big-endian int32, the values."""
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, IDX_CODES[big.dtype], array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + big.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """One IDX file, gzip-compressed when ``path`` ends in .gz."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def mnist_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 28x28 uint8 images and labels cycling through 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_mnist_folder(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = False) -> dict[str, np.ndarray]:
    """The four IDX files of an MNIST-like data set; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    (x, y), (x_test, y_test) = mnist_like(n_train, 1), mnist_like(n_test, 2)
    end = ".gz" if gz else ""
    arrays = {"train-images-idx3-ubyte": x, "train-labels-idx1-ubyte": y,
              "t10k-images-idx3-ubyte": x_test, "t10k-labels-idx1-ubyte": y_test}
    for stem, array in arrays.items():
        write_idx(folder / f"{stem}{end}", array)
    return arrays


def write_shd(path: Path, times: list[list[float]], units: list[list[int]], labels: list[int],
              speakers: list[int] | None = None) -> Path:
    """One file in SHD's layout: ``spikes/times`` (ragged float16, s) and ``spikes/units`` (ragged
    uint16) as variable-length datasets, ``labels`` (uint8) and ``extra/speaker``."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        spikes = handle.create_group("spikes")
        for name, rows, dtype in (("times", times, np.float16), ("units", units, np.uint16)):
            data = spikes.create_dataset(name, (len(rows),), dtype=h5py.vlen_dtype(dtype))
            for i, row in enumerate(rows):
                data[i] = np.asarray(row, dtype=dtype)
        handle.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        handle.create_group("extra").create_dataset("speaker", data=np.asarray(speakers or [0] * len(labels),
                                                                               dtype=np.uint8))
    return path


def write_shd_folder(folder: Path, n_train: int = 40, n_test: int = 10, seed: int = 0) -> Path:
    """``shd_train.h5`` and ``shd_test.h5`` with random spikes (labels cycling through 0..19)."""
    rng = np.random.default_rng(seed)
    for name, n in (("shd_train.h5", n_train), ("shd_test.h5", n_test)):
        counts = rng.integers(0, 50, size=n)
        write_shd(folder / name, [rng.uniform(0, 1.3, c).tolist() for c in counts],
                  [rng.integers(0, 700, c).tolist() for c in counts], [i % 20 for i in range(n)],
                  [i % 5 for i in range(n)])
    return folder
