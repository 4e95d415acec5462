"""The user's own images in the ImageFolder layout, and the choice of data source.

``DIR/<class>/*.png|jpg|jpeg``: sorted folder names are the class names. Either
``DIR`` holds the class folders and a seeded, per-class share of each is held out
for evaluation (``--val-split``), or ``DIR/train`` and ``DIR/test`` both hold them.
A bad image stops the run with a one-line :class:`DataError` naming the file;
files that are not images are skipped and counted, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from archcompile.errors import DataError, Diagnostic
from archcompile.train.data import CLASS_NAMES, FashionMNIST, load_fashion_mnist, prepare_images

FASHION = "fashion-mnist"
EXTENSIONS = (".png", ".jpg", ".jpeg")
# Fixed statistics: pixels in [0, 1] map to [-1, 1]; eval needs no training pass.
MEAN = 0.5
STD = 0.5
# The split's own seed, so that eval finds the same held-out images as training.
SPLIT_SEED = 0


def _error(message: str, path: Path | None = None, hint: str | None = None) -> DataError:
    return DataError(Diagnostic(message, file=str(path) if path else None, hint=hint))


def data_label(data: str) -> str:
    """The data set's name in messages."""
    return "Fashion-MNIST" if data == FASHION else f"the image folder {data}"


@dataclass(frozen=True)
class Listing:
    """Image files per class, before any pixel is read."""

    class_names: tuple[str, ...]
    files: tuple[tuple[Path, ...], ...]
    skipped: int


def _split_root(root: Path) -> tuple[Path, Path | None]:
    """The training folder and, in the train/test layout, the test folder."""
    if not root.is_dir():
        raise _error("not a folder of class folders", root, "pass --data fashion-mnist or a DIR")
    train, test = root / "train", root / "test"
    if train.is_dir() and test.is_dir():
        return train, test
    return root, None


def list_classes(root: Path) -> Listing:
    """Class folders and their image files; one class or an empty one is an error,
    because a classifier cannot learn from it."""
    entries = list(root.iterdir())
    folders = sorted(p for p in entries if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        found = ", ".join(p.name for p in folders) or "none"
        raise _error(f"needs at least 2 class folders, found {len(folders)} ({found})", root)
    files, skipped = [], len(entries) - len(folders)  # stray files, hidden folders
    for folder in folders:
        entries = sorted(folder.iterdir())
        images = tuple(p for p in entries if p.suffix.lower() in EXTENSIONS)
        skipped += len(entries) - len(images)
        if not images:
            raise _error("class folder has no .png/.jpg/.jpeg images", folder)
        files.append(images)
    return Listing(tuple(p.name for p in folders), tuple(files), skipped)


def class_names(data: str) -> tuple[str, ...]:
    """The class names of a data source, without reading any image."""
    if data == FASHION:
        return CLASS_NAMES
    train, _ = _split_root(Path(data))
    return list_classes(train).class_names


def read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image as uint8 ``(H, W)`` or ``(H, W, 3)``, resized bilinearly."""
    from PIL import Image, UnidentifiedImageError

    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise _error(f"the spec's input has {channels} channels; images give 1 (gray) or 3 (RGB)")
    try:
        with Image.open(path) as image:
            image.load()  # decodes now: a truncated file fails here, not mid-training
            converted = image.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(converted, dtype=np.uint8)
    except UnidentifiedImageError:
        raise _error("not an image Pillow can read (.png, .jpg or .jpeg data)", path) from None
    except Image.DecompressionBombError as exc:
        raise _error(f"image too large: {exc}", path) from None
    except (OSError, ValueError, SyntaxError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _error(f"cannot read image: {first}", path) from None


def _tensors(files: list[tuple[Path, int]], size, channels) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as normalized float32 ``(N, C, H, W)`` and labels as int64 ``(N,)``."""
    if channels == 1:
        stack = np.stack([read_image(p, size, 1) for p, _ in files])
        images = prepare_images(stack, size, 1, MEAN, STD)
    else:
        stack = np.stack([read_image(p, size, channels) for p, _ in files])
        images = torch.from_numpy(stack).permute(0, 3, 1, 2).float().div_(255.0)
        images = images.sub_(MEAN).div_(STD).contiguous()
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return images, labels


def _labelled(listing: Listing) -> list[tuple[Path, int]]:
    return [(p, label) for label, paths in enumerate(listing.files) for p in paths]


def split_files(listing: Listing, val_split: float) -> tuple[list, list]:
    """Hold out ``val_split`` of each class (at least one image), the same files on
    every run: the shuffle depends only on the file names and SPLIT_SEED."""
    if not 0 < val_split < 1:
        raise _error(f"--val-split must be between 0 and 1 (exclusive), not {val_split}")
    rng = np.random.default_rng(SPLIT_SEED)
    train, held = [], []
    for label, paths in enumerate(listing.files):
        order = rng.permutation(len(paths))
        count = max(1, round(len(paths) * val_split))
        if count >= len(paths):
            folder = paths[0].parent
            raise _error(
                f"{len(paths)} images leave none for training at --val-split {val_split}", folder
            )
        held += [(paths[i], label) for i in sorted(order[:count])]
        train += [(paths[i], label) for i in sorted(order[count:])]
    return train, held


def _limited(files: list, limit: int | None) -> list:
    """The first ``limit`` files taken in turn from each class, so that a small
    --limit-train still sees every class."""
    if limit is None:
        return files
    seen: dict[int, int] = {}
    turns = []
    for path, label in files:
        seen[label] = seen.get(label, 0) + 1
        turns.append((seen[label], label, path))
    return [(path, label) for _, label, path in sorted(turns)[:limit]]


def load_image_folder(
    root: Path,
    size: tuple[int, int],
    channels: int,
    val_split: float = 0.1,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> tuple[FashionMNIST, int]:
    """Both splits of an ImageFolder, and the count of skipped non-image files."""
    names, train, held, skipped = folder_splits(root, val_split)
    train_images, train_labels = _tensors(_limited(train, limit_train), size, channels)
    test_images, test_labels = _tensors(_limited(held, limit_test), size, channels)
    data = FashionMNIST(train_images, train_labels, test_images, test_labels, names)
    return data, skipped


def load_held_out(
    root: Path, size: tuple[int, int], channels: int, val_split: float, limit_test: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Only the evaluation images (what ``archc eval`` needs), the same files as
    training held out."""
    _, _, held, _ = folder_splits(root, val_split)
    return _tensors(_limited(held, limit_test), size, channels)


def folder_splits(root: Path, val_split: float) -> tuple[tuple[str, ...], list, list, int]:
    """Class names, training and evaluation files, and the count of skipped files."""
    train_root, test_root = _split_root(Path(root))
    listing = list_classes(train_root)
    if test_root is None:
        train, held = split_files(listing, val_split)
        skipped = listing.skipped
    else:
        tests = list_classes(test_root)
        if tests.class_names != listing.class_names:
            message = f"class folders {', '.join(tests.class_names)} differ from train's"
            raise _error(message, test_root, f"train has {', '.join(listing.class_names)}")
        train, held = _labelled(listing), _labelled(tests)
        skipped = listing.skipped + tests.skipped
    return listing.class_names, train, held, skipped


def load_data(
    data: str,
    data_dir: Path,
    size: tuple[int, int],
    channels: int,
    limit_train: int | None,
    limit_test: int | None,
    val_split: float,
) -> tuple[FashionMNIST, int]:
    """The data source behind ``--data``: Fashion-MNIST or an ImageFolder."""
    if data == FASHION:
        return load_fashion_mnist(data_dir, size, channels, limit_train, limit_test), 0
    return load_image_folder(Path(data), size, channels, val_split, limit_train, limit_test)
