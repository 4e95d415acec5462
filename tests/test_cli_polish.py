"""The command line's conveniences: eval with the spec a run stored, --version,
-h, shell completion, choices listed in --help and checked as usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archcompile.train.data import DEFAULT_DATA_DIR

needs_data = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)
TINY = Path("tests/specs/tiny_cnn.yaml")
SHORT = ["--max-steps", "2", "--limit-train", "64", "--limit-test", "32"]


def _widened(tmp_path: Path) -> Path:
    """tiny_cnn with its first convolution's width as a param, so a --set
    changes the weights' shapes but keeps the 10 classes eval needs."""
    text = TINY.read_text("utf-8")
    text = text.replace("num_classes: 10", "num_classes: 10\n  width: 8")
    text = text.replace("conv: {out: 8,", "conv: {out: $width,")
    assert "$width" in text
    spec = tmp_path / "wide.yaml"
    spec.write_text(text, "utf-8")
    return spec


@needs_data
def test_eval_uses_the_spec_a_set_run_stored(cli, tmp_path: Path) -> None:
    spec, run = _widened(tmp_path), tmp_path / "run"
    result = cli("train", spec, "--set", "width=4", *SHORT, "--out", run)
    assert result.code == 0, result.err

    result = cli("eval", spec, run, "--limit-test", "32", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["count"] == 32  # the note stays off stdout
    (note,) = result.err.strip().splitlines()
    assert note.startswith("using the spec stored in ") and "checkpoint.json" in note
    assert note.endswith("(the run was trained with --set width=4)")

    result = cli("eval", spec, run, "--limit-test", "32", "--set", "width=4")
    assert result.code == 0 and result.err == ""  # the file's spec fits: no note

    result = cli("eval", spec, run, "--limit-test", "32", "--spec-from-file")
    assert result.code == 1
    error, hint = result.err.strip().splitlines()
    assert "tensors differ in shape" in error
    assert hint == (
        "  hint: the run was trained with --set width=4: repeat it, or leave out --spec-from-file"
    )


@needs_data
def test_eval_of_an_edited_spec_uses_the_stored_one(cli, tmp_path: Path) -> None:
    spec, run = _widened(tmp_path), tmp_path / "run"
    assert cli("train", spec, *SHORT, "--out", run).code == 0
    spec.write_text(spec.read_text("utf-8").replace("width: 8", "width: 6"), "utf-8")
    result = cli("eval", spec, run, "--limit-test", "32")
    assert result.code == 0, result.err
    assert "(the run was trained with --set width=8)" in result.err
