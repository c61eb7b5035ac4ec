"""The IDX file format of MNIST and Fashion-MNIST, plain or gzip-compressed (``.gz``).

A file is a magic number (two zero bytes, a type code, the number of dimensions d), d big-endian
int32 sizes, then the values, big-endian, in row-major order.
"""
from __future__ import annotations

import gzip
import math
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: type code -> the big-endian numpy type of the values
TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # type: ignore[return-value]


def _header(handle: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = handle.read(4)
    if len(magic) < 4 or magic[0] or magic[1] or magic[2] not in TYPES:
        raise ValueError(f"{path} is not an IDX file: it starts with bytes {magic.hex() or 'none'}, not "
                         "00 00 <type 08|09|0b|0c|0d|0e> <dimensions>")
    sizes = handle.read(4 * magic[3])
    if len(sizes) < 4 * magic[3]:
        raise ValueError(f"{path} is cut short inside its header ({magic[3]} dimensions announced)")
    return np.dtype(TYPES[magic[2]]), tuple(int(n) for n in np.frombuffer(sizes, ">i4"))


def idx_header(path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """The value type and the shape an IDX file announces (reads only its header)."""
    try:
        with _open(path) as handle:
            return _header(handle, path)
    except (OSError, EOFError) as exc:  # a damaged or mislabelled .gz
        raise ValueError(f"{path} cannot be read: {exc}") from None


def read_idx(path: Path) -> np.ndarray:
    """The array an IDX file holds (native byte order); ValueError when the file is not IDX or
    holds more or fewer values than its header announces."""
    try:
        with _open(path) as handle:
            dtype, shape = _header(handle, path)
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from None
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path} holds {len(data)} bytes of values, but its header announces shape "
                         f"{list(shape)} ({expected} bytes)")
    return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="))
