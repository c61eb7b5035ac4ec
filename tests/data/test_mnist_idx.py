"""The IDX reader on hand-written bytes, and MNISTIDX / SequentialMNISTIDX on small IDX files
written here (30 training and 10 test images of 28x28, plain and .gz)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import write_idx, write_mnist_folder

from data.idx import idx_header, read_idx
from data.mnist import MNISTIDX, SequentialMNISTIDX
from settings.errors import ConfigError
from settings.registries import DATASETS
from settings.schema import validate


def test_read_idx_parses_hand_written_bytes(tmp_path: Path) -> None:
    ubyte = b"\x00\x00\x08\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03" + bytes([0, 1, 2, 3, 254, 255])
    (tmp_path / "a").write_bytes(ubyte)
    (tmp_path / "a.gz").write_bytes(gzip.compress(ubyte))
    for name in ("a", "a.gz"):
        array = read_idx(tmp_path / name)
        assert array.dtype == np.uint8 and array.tolist() == [[0, 1, 2], [3, 254, 255]]
    int32 = b"\x00\x00\x0c\x01" + b"\x00\x00\x00\x02" + b"\x00\x00\x01\x00" + b"\xff\xff\xff\xfe"  # 256, -2
    (tmp_path / "b").write_bytes(int32)
    assert read_idx(tmp_path / "b").tolist() == [256, -2]
    assert idx_header(tmp_path / "a.gz") == (np.dtype(">u1"), (2, 3))


def test_bad_idx_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "text").write_bytes(b"hello world")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(3))
    (tmp_path / "fake.gz").write_bytes(b"\x00\x00\x08\x01")
    with pytest.raises(ValueError, match=r"text is not an IDX file: it starts with bytes 68656c6c"):
        read_idx(tmp_path / "text")
    with pytest.raises(ValueError, match=r"short holds 3 bytes of values, but its header announces shape \[5\]"):
        read_idx(tmp_path / "short")
    with pytest.raises(ValueError, match=r"fake.gz cannot be read"):
        read_idx(tmp_path / "fake.gz")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_idx_reads_the_files_and_splits_train_into_train_and_val(tmp_path: Path, gz: bool) -> None:
    written = write_mnist_folder(tmp_path, 30, 10, gz=gz)
    data = MNISTIDX(data_dir=str(tmp_path), val_fraction=0.2)
    splits = data.load(0)
    # 3 training images per class: round(0.2 * 3) = 1 of each for validation
    assert splits.sizes() == {"train": 20, "val": 10, "test": 10} and splits.n_classes == 10
    assert torch.bincount(splits.val.y, minlength=10).tolist() == [1] * 10
    assert splits.test.index.tolist() == list(range(30, 40))
    expected_test = written["t10k-images-idx3-ubyte"].reshape(10, 784).astype(np.float32) / 255
    assert np.array_equal(splits.test.x.numpy(), expected_test)
    assert splits.test.y.tolist() == written["t10k-labels-idx1-ubyte"].tolist()
    train = written["train-images-idx3-ubyte"].reshape(30, 784)
    assert np.array_equal(splits.val.x.numpy(), train[splits.val.index.numpy()] / np.float32(255))
    ids = [set(s.index.tolist()) for _, s in splits.items()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert ids[0] | ids[1] == set(range(30))
    assert torch.equal(data.load(0).val.index, splits.val.index)
    assert not torch.equal(data.load(1).val.index, splits.val.index)
    raw = MNISTIDX(data_dir=str(tmp_path), normalize=False).load(0)
    assert float(raw.test.x.max()) == float(written["t10k-images-idx3-ubyte"].max())
    shape = data.shape()
    assert (shape.samples, shape.features, shape.classes, shape.steps) == (40, 784, 10, None)


def test_sequential_mnist_idx_with_and_without_the_permutation(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path, 30, 10)
    flat = MNISTIDX(data_dir=str(tmp_path)).load(2)
    seq = SequentialMNISTIDX(data_dir=str(tmp_path)).load(2)
    assert seq.input_kind == "sequence" and seq.test.x.shape == (10, 784, 1)
    assert torch.equal(seq.test.x[:, :, 0], flat.test.x) and torch.equal(seq.train.x[:, :, 0], flat.train.x)
    permuted = SequentialMNISTIDX(data_dir=str(tmp_path), permute=True)
    order = np.random.default_rng(0).permutation(784)
    assert np.array_equal(permuted.permutation(2), order) and np.array_equal(permuted.permutation(9), order)
    assert torch.equal(permuted.load(2).test.x[:, :, 0], flat.test.x[:, order])
    assert np.array_equal(permuted.run_files(2)["permutation"], order)
    shape = permuted.shape()
    assert (shape.samples, shape.features, shape.steps) == (40, 1, 784)


def test_a_missing_file_names_the_path_and_where_to_get_the_files(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path, 30, 10)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    for name in ("MNISTIDX", "SequentialMNISTIDX"):
        with pytest.raises(ConfigError) as info:
            validate({"type": name, "data_dir": str(tmp_path)}, DATASETS, "data")
        message = str(info.value)
        assert f"data.data_dir has no t10k-labels-idx1-ubyte (looked in {tmp_path}, each also as .gz)" in message
        assert "yann.lecun.com/exdb/mnist" in message and "fashion-mnist" in message and "\n" not in message.strip()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        MNISTIDX(data_dir=str(tmp_path)).load(0)
    assert MNISTIDX(data_dir=str(tmp_path)).shape() is None


def test_bad_headers_and_fractions_are_config_errors(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path, 30, 10)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(29, dtype=np.uint8))
    with pytest.raises(ConfigError, match=r"data.data_dir holds a bad IDX file: .*train-labels-idx1-ubyte holds 29 "
                                          r"labels for the 30 images"):
        validate({"type": "MNISTIDX", "data_dir": str(tmp_path)}, DATASETS, "data")
    write_mnist_folder(tmp_path, 30, 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 14, 14), dtype=np.uint8))
    with pytest.raises(ConfigError, match=r"differ in size \(784 and 196 pixels\)"):
        validate({"type": "MNISTIDX", "data_dir": str(tmp_path)}, DATASETS, "data")
    write_mnist_folder(tmp_path, 30, 10)
    with pytest.raises(ConfigError, match=r"data.val_fraction must be < 1 \(the rest of the training files trains\)"):
        validate({"type": "MNISTIDX", "data_dir": str(tmp_path), "val_fraction": 1.0}, DATASETS, "data")


def test_without_data_dir_the_files_are_looked_for_under_spikelab_data(tmp_path: Path, monkeypatch) -> None:
    write_mnist_folder(tmp_path / "mnist", 30, 10, gz=True)
    monkeypatch.setenv("SPIKELAB_DATA", str(tmp_path))
    assert MNISTIDX().folder == tmp_path / "mnist"
    assert MNISTIDX().load(0).sizes() == {"train": 30, "val": 0, "test": 10}  # round(0.1 * 3) = 0 per class
    monkeypatch.delenv("SPIKELAB_DATA")
    assert MNISTIDX().folder == Path(__file__).resolve().parents[2] / "data" / "raw" / "mnist"
