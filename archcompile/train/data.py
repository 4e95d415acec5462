"""Fashion-MNIST, read from the original IDX files and prepared for archc's trainer.

The files come from the Debian package ``dataset-fashion-mnist`` (or any directory
given with ``--data-dir``); nothing is ever downloaded. A missing or damaged file is
a :class:`~archcompile.errors.DataError` that the CLI prints on one line.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from archcompile.errors import DataError, Diagnostic

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Mean and (population, ddof=0) standard deviation of all 60,000 x 28 x 28 pixels of
# train-images-idx3-ubyte.gz scaled to [0, 1], computed once in float64 with
#   x = read_idx(DEFAULT_DATA_DIR / "train-images-idx3-ubyte.gz") / 255.0
#   x.mean(), x.std()
# Both splits are normalized with these, so test statistics never leak into training.
MEAN = 0.2860405969887955
STD = 0.35302424451492254

IMAGE_SIZE = (28, 28)

# A corrupt header can declare petabytes; refuse before allocating anything.
MAX_PAYLOAD_BYTES = 1 << 30

INSTALL_HINT = (
    "install the Debian package dataset-fashion-mnist "
    "(`apt-get install dataset-fashion-mnist`) or pass --data-dir"
)

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_TYPE_NAMES = {0x09: "byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_PREFIXES = {"train": "train", "test": "t10k"}
_CHUNK_BYTES = 1 << 20


def _error(path: Path, message: str, hint: str | None = None) -> DataError:
    return DataError(Diagnostic(message, file=str(path), hint=hint))


def _resolve(path: Path) -> Path:
    """Return ``path``, or its compressed / uncompressed sibling if only that exists."""
    if path.exists():
        return path
    other = path.with_suffix("") if path.suffix == ".gz" else path.with_name(path.name + ".gz")
    if other.exists():
        return other
    raise _error(path, f"file not found (also tried {other.name})", INSTALL_HINT)


def _open(path: Path) -> io.BufferedIOBase:
    if path.suffix != ".gz":
        return open(path, "rb")
    with open(path, "rb") as raw:
        head = raw.read(2)
    if head != _GZIP_MAGIC:
        found = f"starts with 0x{head.hex()}" if head else "is empty"
        raise _error(path, f"not gzip data although the name ends in .gz (the file {found})")
    return gzip.open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzip-compressed if its name ends in ``.gz``)."""
    path = _resolve(Path(path))
    try:
        with _open(path) as stream:
            return _read_stream(stream, path)
    except EOFError as exc:
        raise _error(path, "truncated gzip stream: it ends before its end marker") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise _error(path, f"corrupt gzip stream: {exc}") from exc
    except OSError as exc:
        raise _error(path, f"cannot read file: {exc.strerror or exc}") from exc


def _read_stream(stream: io.BufferedIOBase, path: Path) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise _error(path, f"truncated IDX header: {len(magic)} of the 4 magic-number bytes")
    if magic[:2] != b"\0\0":
        hint = None
        if magic[:2] == _GZIP_MAGIC:
            twice = path.suffix == ".gz"
            hint = "the data is gzip-compressed twice" if twice else "gzip data: name it *.gz"
        message = f"not an IDX file: magic number 0x{magic.hex()} does not start with 0x0000"
        raise _error(path, message, hint)
    code, ndim = magic[2], magic[3]
    if code != _UBYTE:
        kind = _TYPE_NAMES.get(code, "unknown")
        message = f"unsupported IDX type code 0x{code:02x} ({kind}); only 0x08 (ubyte) is read"
        raise _error(path, message)
    if not 1 <= ndim <= 4:
        raise _error(path, f"IDX header declares {ndim} dimensions; expected 1 to 4")
    raw = stream.read(4 * ndim)
    if len(raw) < 4 * ndim:
        message = f"truncated IDX header: {len(raw)} of the {4 * ndim} bytes of {ndim} sizes"
        raise _error(path, message)
    shape = struct.unpack(f">{ndim}I", raw)
    size = math.prod(shape)
    declared = f"header declares {'x'.join(map(str, shape))} = {size:,} bytes"
    if size > MAX_PAYLOAD_BYTES:
        raise _error(path, f"IDX {declared}, more than the {MAX_PAYLOAD_BYTES:,}-byte limit")

    data = np.empty(size, dtype=np.uint8)
    view = memoryview(data)
    got = 0
    while got < size:
        count = stream.readinto(view[got:])
        if not count:
            break
        got += count
    if got < size:
        raise _error(path, f"truncated IDX file: {declared}, found {got:,}")
    # Reading on to the end also makes gzip verify its CRC and length trailer.
    extra = 0
    while chunk := stream.read(_CHUNK_BYTES):
        extra += len(chunk)
    if extra:
        raise _error(path, f"trailing bytes in IDX file: {declared}, found {size + extra:,}")
    return data.reshape(shape)


def load_split(
    split: Literal["train", "test"],
    data_dir: Path = DEFAULT_DATA_DIR,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 ``(N, 28, 28)`` and labels as int64 ``(N,)``, the first ``limit``."""
    if split not in _PREFIXES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    prefix = _PREFIXES[split]
    image_path = _resolve(Path(data_dir) / f"{prefix}-images-idx3-ubyte.gz")
    label_path = _resolve(Path(data_dir) / f"{prefix}-labels-idx1-ubyte.gz")
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SIZE:
        shape = "x".join(map(str, images.shape))
        raise _error(image_path, f"expected Nx28x28 images, the header declares {shape}")
    if labels.ndim != 1:
        shape = "x".join(map(str, labels.shape))
        raise _error(label_path, f"expected 1-dimensional labels, the header declares {shape}")
    if len(labels) != len(images):
        message = f"{len(labels):,} labels for the {len(images):,} images of {image_path.name}"
        raise _error(label_path, message)
    bad = np.flatnonzero(labels >= len(CLASS_NAMES))
    if bad.size:
        first = int(bad[0])
        message = (
            f"label {labels[first]} at index {first:,} is outside 0..{len(CLASS_NAMES) - 1}"
            f" ({bad.size:,} such labels)"
        )
        raise _error(label_path, message)
    if limit is not None and limit < len(labels):
        # Copy so that a small subset does not keep the whole file alive.
        images, labels = images[:limit].copy(), labels[:limit]
    return images, labels.astype(np.int64)


def prepare_images(
    images: np.ndarray,
    size: tuple[int, int],
    channels: int = 1,
    mean: float = MEAN,
    std: float = STD,
    chunk: int = 4096,
) -> torch.Tensor:
    """Scale uint8 ``(N, H0, W0)`` images to a normalized float32 ``(N, channels, H, W)``.

    Images are resized once, here, with bilinear interpolation and no antialiasing,
    as the reference tutorial's ``tf.image.resize`` does, rather than on every batch.
    """
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    height, width = size
    if height < 1 or width < 1 or channels < 1 or chunk < 1:
        raise ValueError(f"bad size {size}, channels {channels} or chunk {chunk}")
    if not std > 0:
        raise ValueError(f"std must be positive, not {std}")
    _check_memory(len(images), channels, height, width)
    resize = tuple(images.shape[1:]) != (height, width)
    out = torch.empty((len(images), channels, height, width), dtype=torch.float32)
    # Chunks bound the float32 intermediates to one chunk beside the output tensor.
    for start in range(0, len(images), chunk):
        block = torch.from_numpy(images[start : start + chunk].astype(np.float32))
        block = block.unsqueeze(1).div_(255.0)
        if resize:
            block = F.interpolate(
                block, size=(height, width), mode="bilinear", align_corners=False, antialias=False
            )
        # Assignment broadcasts the single gray channel over all `channels`.
        out[start : start + len(block)] = block.sub_(mean).div_(std)
    return out


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def _check_memory(count: int, channels: int, height: int, width: int) -> None:
    """Refuse images that cannot fit in this machine's memory once resized
    (``input: [1, 46340, 46340]`` is 8 GiB per image), before allocating them."""
    needed = count * channels * height * width * 4
    available = _physical_memory()
    if available is not None and needed > available // 2:
        raise DataError(
            Diagnostic(
                f"{count:,} images resized to {channels}x{height}x{width} take "
                f"{needed / 2**30:,.1f} GiB; this machine has {available / 2**30:,.1f} GiB of memory",
                hint="use a smaller input, or fewer images (--limit-train, --limit-test)",
            )
        )


@dataclass(frozen=True)
class FashionMNIST:
    """Both splits, prepared for a model: images float32 (N, C, H, W), labels int64 (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...] = CLASS_NAMES


def load_fashion_mnist(
    data_dir: Path = DEFAULT_DATA_DIR,
    size: tuple[int, int] = IMAGE_SIZE,
    channels: int = 1,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> FashionMNIST:
    """Load, resize and normalize both splits with the training-set statistics."""

    def prepared(
        split: Literal["train", "test"], limit: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = load_split(split, data_dir, limit)
        return prepare_images(images, size, channels), torch.from_numpy(labels)

    train_images, train_labels = prepared("train", limit_train)
    test_images, test_labels = prepared("test", limit_test)
    return FashionMNIST(train_images, train_labels, test_images, test_labels)
