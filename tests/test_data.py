"""Tests of the Fashion-MNIST IDX reader and image preparation (archcompile.train.data)."""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archcompile.errors import DataError
from archcompile.train.data import (
    CLASS_NAMES,
    DEFAULT_DATA_DIR,
    MAX_PAYLOAD_BYTES,
    load_fashion_mnist,
    load_split,
    prepare_images,
    read_idx,
)

needs_data = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason=f"Fashion-MNIST is not installed in {DEFAULT_DATA_DIR} "
    "(apt-get install dataset-fashion-mnist, or `make data`)",
)
needs_train = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason=f"Fashion-MNIST training images are not installed in {DEFAULT_DATA_DIR}",
)


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def write_split(directory: Path, images: np.ndarray, labels: np.ndarray) -> None:
    write(directory / "t10k-images-idx3-ubyte.gz", idx_bytes(images))
    write(directory / "t10k-labels-idx1-ubyte.gz", idx_bytes(labels))


def one_line_error(excinfo: pytest.ExceptionInfo[DataError], path: Path, *words: str) -> str:
    """Check the formatted error is one line (plus a hint), names the file and says what."""
    lines = excinfo.value.format().splitlines()
    assert 1 <= len(lines) <= 2, lines
    if len(lines) == 2:
        assert lines[1].startswith("  hint: "), lines
    assert lines[0].startswith(f"{path}: error: "), lines
    assert "Traceback" not in lines[0]
    for word in words:
        assert word in lines[0], lines
    return lines[0]


# (a) the real test split


@needs_data
def test_real_test_split() -> None:
    images, labels = load_split("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert labels.min() == 0 and labels.max() == len(CLASS_NAMES) - 1
    assert np.bincount(labels).tolist() == [1000] * 10
    assert images.max() == 255 and images.min() == 0


@needs_data
def test_real_test_split_limit() -> None:
    images, labels = load_split("test", limit=5)
    full_images, full_labels = load_split("test")
    assert images.shape == (5, 28, 28) and labels.shape == (5,)
    np.testing.assert_array_equal(images, full_images[:5])
    np.testing.assert_array_equal(labels, full_labels[:5])


# (b) synthetic files read back exactly


@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (2, 1, 3, 2), (0, 28, 28)])
def test_roundtrip(tmp_path: Path, name: str, shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    back = read_idx(write(tmp_path / name, idx_bytes(array)))
    assert back.dtype == np.uint8 and back.shape == shape
    np.testing.assert_array_equal(back, array)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.booleans(), st.integers(0, 2**32))
def test_roundtrip_property(shape: list[int], compressed: bool, seed: int) -> None:
    array = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / ("a.gz" if compressed else "a"), idx_bytes(array))
        np.testing.assert_array_equal(read_idx(path), array)


def test_either_name_is_accepted(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write(tmp_path / "raw", idx_bytes(array))
    write(tmp_path / "packed.gz", idx_bytes(array))
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed"), array)


def test_uncompressed_split_directory(tmp_path: Path) -> None:
    images = np.full((3, 28, 28), 9, dtype=np.uint8)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images))
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.array([0, 9, 4])))
    got_images, got_labels = load_split("test", tmp_path)
    np.testing.assert_array_equal(got_images, images)
    assert got_labels.tolist() == [0, 9, 4] and got_labels.dtype == np.int64


# (c) corrupt inputs

GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
CORRUPT = {
    "wrong magic": (b"\x01\x00" + GOOD[2:], ["not an IDX file", "0x01000803"]),
    "gzip data in a raw name": (gzip.compress(GOOD), ["not an IDX file"]),
    "float type code": (GOOD[:2] + b"\x0d" + GOOD[3:], ["type code 0x0d", "float32"]),
    "unknown type code": (GOOD[:2] + b"\x42" + GOOD[3:], ["type code 0x42"]),
    "zero dimensions": (GOOD[:3] + b"\x00", ["0 dimensions"]),
    "five dimensions": (GOOD[:3] + b"\x05" + GOOD[4:], ["5 dimensions"]),
    "truncated magic": (GOOD[:2], ["truncated IDX header", "2 of the 4"]),
    "truncated sizes": (GOOD[:9], ["truncated IDX header", "5 of the 12"]),
    "empty file": (b"", ["truncated IDX header"]),
    "truncated payload": (GOOD[:-5], ["truncated IDX file", "2x3x4 = 24 bytes, found 19"]),
    "trailing bytes": (GOOD + b"\x00" * 7, ["trailing bytes", "2x3x4 = 24 bytes, found 31"]),
}


@pytest.mark.parametrize("name", ["f", "f.gz"])
@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_idx(tmp_path: Path, case: str, name: str) -> None:
    payload, words = CORRUPT[case]
    path = write(tmp_path / name, payload)
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, path, *words)


@pytest.mark.parametrize(("name", "hint"), [("f", "name it *.gz"), ("f.gz", "compressed twice")])
def test_gzip_data_hint(tmp_path: Path, name: str, hint: str) -> None:
    path = write(tmp_path / name, gzip.compress(GOOD))
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, path, "not an IDX file")
    assert excinfo.value.first.hint is not None and hint in excinfo.value.first.hint


def test_truncated_header_message_is_exact(tmp_path: Path) -> None:
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28)
    path = write(tmp_path / "images", header + bytes(1000))
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    message = "truncated IDX file: header declares 60000x28x28 = 47,040,000 bytes, found 1,000"
    assert one_line_error(excinfo, path) == f"{path}: error: {message}"


def test_huge_declared_size_is_refused(tmp_path: Path) -> None:
    header = bytes([0, 0, 8, 4]) + struct.pack(">4I", 2**32 - 1, 2**32 - 1, 2**32 - 1, 2)
    path = write(tmp_path / "huge.gz", header + bytes(10))
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, path, f"{MAX_PAYLOAD_BYTES:,}-byte limit")


def test_not_gzip_inside_gz_name(tmp_path: Path) -> None:
    path = tmp_path / "raw.gz"
    path.write_bytes(GOOD)
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, path, "not gzip data", "0x0000")


@pytest.mark.parametrize(
    ("case", "mangle", "word"),
    [
        ("truncated stream", lambda data: data[: len(data) // 2], "truncated gzip"),
        ("bad crc", lambda data: data[:-8] + bytes(4) + data[-4:], "corrupt gzip"),
        ("bad length", lambda data: data[:-4] + b"\xff\xff\xff\x7f", "corrupt gzip"),
        ("bad deflate", lambda data: data[:10] + b"\xff" * 8 + data[18:], "gzip"),
        ("garbage after", lambda data: data + b"garbage!", "corrupt gzip"),
        ("header only", lambda data: data[:5], "gzip"),
    ],
)
def test_corrupt_gzip_stream(tmp_path: Path, case: str, mangle, word: str) -> None:
    data = gzip.compress(idx_bytes(np.arange(600, dtype=np.uint8).reshape(20, 30)))
    path = tmp_path / "f.gz"
    path.write_bytes(mangle(data))
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, path, word)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing-idx1-ubyte.gz"
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, path, "file not found", "also tried nothing-idx1-ubyte")
    assert excinfo.value.first.hint is not None
    assert "apt-get install dataset-fashion-mnist" in excinfo.value.first.hint
    assert "--data-dir" in excinfo.value.first.hint


def test_missing_split_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_split("train", tmp_path)
    one_line_error(excinfo, tmp_path / "train-images-idx3-ubyte.gz", "file not found")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "dir"
    path.mkdir()
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, path, "cannot read file")


def test_count_mismatch(tmp_path: Path) -> None:
    write_split(tmp_path, np.zeros((4, 28, 28), np.uint8), np.array([1, 2, 3]))
    with pytest.raises(DataError) as excinfo:
        load_split("test", tmp_path)
    one_line_error(excinfo, tmp_path / "t10k-labels-idx1-ubyte.gz", "3 labels for the 4 images")


def test_label_out_of_range(tmp_path: Path) -> None:
    write_split(tmp_path, np.zeros((4, 28, 28), np.uint8), np.array([1, 12, 3, 200]))
    with pytest.raises(DataError) as excinfo:
        load_split("test", tmp_path)
    label_path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    one_line_error(excinfo, label_path, "label 12 at index 1", "2 such labels")


def test_wrong_image_size(tmp_path: Path) -> None:
    write_split(tmp_path, np.zeros((2, 32, 32), np.uint8), np.array([1, 2]))
    with pytest.raises(DataError) as excinfo:
        load_split("test", tmp_path)
    one_line_error(excinfo, tmp_path / "t10k-images-idx3-ubyte.gz", "2x32x32")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        load_split("validation")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        load_split("test", limit=-1)


# (d) prepare_images


@pytest.mark.parametrize("channels", [1, 3])
def test_prepare_shape_and_dtype(channels: int) -> None:
    images = np.random.default_rng(1).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    out = prepare_images(images, (96, 96), channels=channels, chunk=3)
    assert out.shape == (10, channels, 96, 96) and out.dtype == torch.float32
    assert torch.equal(out[:, :1].expand(-1, channels, -1, -1), out)


def test_prepare_matches_unchunked_interpolate() -> None:
    images = np.random.default_rng(2).integers(0, 256, size=(9, 28, 28), dtype=np.uint8)
    out = prepare_images(images, (40, 50), mean=0.0, std=1.0, chunk=4)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(images).float().unsqueeze(1) / 255.0,
        size=(40, 50),
        mode="bilinear",
        align_corners=False,
    )
    torch.testing.assert_close(out, expected)


def test_constant_image_stays_constant() -> None:
    images = np.full((2, 28, 28), 200, dtype=np.uint8)
    out = prepare_images(images, (96, 96), channels=3, mean=0.5, std=0.25)
    torch.testing.assert_close(out, torch.full_like(out, (200 / 255 - 0.5) / 0.25))


def test_no_resize_at_28() -> None:
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    out = prepare_images(images, (28, 28), mean=0.0, std=1.0)
    torch.testing.assert_close(out[:, 0], torch.from_numpy(images).float() / 255.0)


def test_prepare_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        prepare_images(np.zeros((2, 28, 28), np.float32), (28, 28))
    with pytest.raises(ValueError):
        prepare_images(np.zeros((2, 28, 28), np.uint8), (0, 28))


@needs_train
def test_training_set_normalizes_to_zero_mean_unit_std() -> None:
    images, _ = load_split("train")
    out = prepare_images(images, (28, 28))
    assert abs(out.mean().item()) < 1e-4
    assert abs(out.std().item() - 1.0) < 1e-4


@needs_data
@needs_train
def test_load_fashion_mnist() -> None:
    data = load_fashion_mnist(size=(32, 32), channels=3, limit_train=64, limit_test=16)
    assert data.train_images.shape == (64, 3, 32, 32)
    assert data.test_images.shape == (16, 3, 32, 32)
    assert data.train_labels.dtype == torch.int64 and data.test_labels.shape == (16,)
    assert data.class_names == CLASS_NAMES
