"""``archc train/eval --data DIR``: the user's own images in the ImageFolder layout,
generated here as tiny PNGs so that every test runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from archcompile.train.imagefolder import list_classes, load_image_folder, split_files

CLASSES = ("cat", "dog", "emu")

SPEC = """\
archc: 1
name: Folder
input: [{channels}, 8, 8]
params:
  num_classes: {classes}
blocks:
  features:
    - conv: {{out: 4, kernel: 3, padding: 1, activation: relu}}
    - global_avgpool
  head:
    - flatten
    - linear: {{out: $num_classes}}
"""


def make_images(root: Path, classes=CLASSES, per_class: int = 6) -> Path:
    """Class folders of 12x12 PNGs, half RGB and half grayscale, each class its own shade."""
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            shade = 40 * label + 5 * i
            if i % 2:
                Image.new("RGB", (12, 12), (shade, 255 - shade, 0)).save(folder / f"{i}.png")
            else:
                Image.new("L", (12, 12), shade).save(folder / f"{i}.png")
    return root


def write_spec(tmp_path: Path, channels: int = 1, classes: int = 3) -> Path:
    path = tmp_path / f"folder{channels}_{classes}.yaml"
    path.write_text(SPEC.format(channels=channels, classes=classes))
    return path


def assert_one_error(err: str) -> None:
    """One error line (and at most a hint line under it), never a traceback."""
    lines = err.strip().splitlines()
    assert ": error: " in lines[0], err
    assert all(line.startswith("  hint: ") for line in lines[1:]), err


def train(cli, spec: Path, data: Path, out: Path, *extra: str):
    args = ["--max-steps", "2", "--batch-size", "4", "--no-channels-last", "--out", out]
    return cli("train", spec, "--data", data, *args, *extra)


@pytest.mark.parametrize("channels", [1, 3])
def test_trains_and_evaluates_an_image_folder(cli, tmp_path: Path, channels: int) -> None:
    data = make_images(tmp_path / "images")
    spec = write_spec(tmp_path, channels)
    result = train(cli, spec, data, tmp_path / "run")
    assert result.code == 0, result.err
    saved = tmp_path / "run" / "step-00000002" / "checkpoint.json"
    config = json.loads(saved.read_text())["config"]
    assert config["data"] == str(data) and config["val_split"] == 0.1
    result = cli("eval", spec, tmp_path / "run", "--data", data, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert list(report["per_class"]) == list(CLASSES)
    assert report["count"] == 3  # one held out per class
    result = cli("eval", spec, tmp_path / "run", "--data", data)
    assert result.code == 0, result.err
    for name in CLASSES:
        assert name in result.out


def test_train_test_layout_evaluates_the_test_folder(cli, tmp_path: Path) -> None:
    make_images(tmp_path / "images" / "train")
    make_images(tmp_path / "images" / "test", per_class=2)
    spec = write_spec(tmp_path)
    assert train(cli, spec, tmp_path / "images", tmp_path / "run").code == 0
    result = cli("eval", spec, tmp_path / "run", "--data", tmp_path / "images", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["count"] == 6


def test_val_split_is_deterministic_and_per_class(tmp_path: Path) -> None:
    listing = list_classes(make_images(tmp_path / "images", per_class=10))
    train_a, held_a = split_files(listing, 0.3)
    train_b, held_b = split_files(listing, 0.3)
    assert held_a == held_b and train_a == train_b
    assert [label for _, label in held_a] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert not {p for p, _ in held_a} & {p for p, _ in train_a}
    assert split_files(listing, 0.5)[1] != held_a


def test_a_corrupt_image_is_one_line_naming_it(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images")
    bad = data / "dog" / "3.png"
    whole = bad.read_bytes()
    bad.write_bytes(whole[: len(whole) - 20])  # the header reads, the pixels do not
    result = train(cli, write_spec(tmp_path), data, tmp_path / "run")
    assert result.code == 1
    assert_one_error(result.err)
    assert "dog/3.png: error: cannot read image" in result.err


def test_a_text_file_named_png_is_one_line(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images")
    (data / "emu" / "notes.png").write_text("not an image")
    result = train(cli, write_spec(tmp_path), data, tmp_path / "run")
    assert result.code == 1
    assert_one_error(result.err)
    assert "emu/notes.png: error: not an image Pillow can read" in result.err


def test_other_files_are_skipped_and_counted(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images")
    (data / "cat" / "README.txt").write_text("about cats")
    (data / "dog" / "drafts").mkdir()
    result = train(cli, write_spec(tmp_path), data, tmp_path / "run")
    assert result.code == 0, result.err
    assert "skipped 2 entries" in result.out + result.err


def test_an_empty_class_folder_is_one_line(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images")
    (data / "zebra").mkdir()
    result = train(cli, write_spec(tmp_path), data, tmp_path / "run")
    assert result.code == 1
    assert_one_error(result.err)
    assert "zebra" in result.err and "no .png/.jpg/.jpeg images" in result.err


def test_a_single_class_is_one_line(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images", classes=("cat",))
    result = train(cli, write_spec(tmp_path), data, tmp_path / "run")
    assert result.code == 1
    assert "needs at least 2 class folders, found 1 (cat)" in result.err
    assert_one_error(result.err)


def test_class_count_mismatch_names_the_folder(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images")
    result = train(cli, write_spec(tmp_path, classes=10), data, tmp_path / "run")
    assert result.code == 1
    assert_one_error(result.err)
    assert f"the image folder {data} needs [N, 3] class scores" in result.err


def test_resume_refuses_other_data(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images")
    other = make_images(tmp_path / "other")
    spec = write_spec(tmp_path)
    assert train(cli, spec, data, tmp_path / "run").code == 0
    result = train(cli, spec, other, tmp_path / "run", "--resume")
    assert result.code == 1
    assert "cannot resume exactly: --data was" in result.err
    result = train(cli, spec, data, tmp_path / "run", "--resume", "--val-split", "0.3")
    assert result.code == 1
    assert "--val-split was 0.1, now 0.3" in result.err


def test_eval_holds_out_what_training_held_out(cli, tmp_path: Path) -> None:
    data = make_images(tmp_path / "images")
    spec = write_spec(tmp_path)
    assert train(cli, spec, data, tmp_path / "run", "--val-split", "0.5").code == 0
    result = cli("eval", spec, tmp_path / "run", "--data", data, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["count"] == 9  # the stored --val-split 0.5, not 0.1


def test_limit_train_takes_every_class_in_turn(tmp_path: Path) -> None:
    data, skipped = load_image_folder(make_images(tmp_path / "images"), (8, 8), 1, 0.5, 3, 2)
    assert data.train_labels.tolist() == [0, 1, 2]
    assert data.test_labels.tolist() == [0, 1]
    assert tuple(data.train_images.shape) == (3, 1, 8, 8) and skipped == 0
    assert data.class_names == CLASSES
