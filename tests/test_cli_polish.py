"""The command line's conveniences: eval with the spec a run stored, --version,
-h, shell completion, choices listed in --help and checked as usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_version(cli) -> None:
    from archcompile import __version__

    result = cli("--version")
    assert result.code == 0 and result.out == f"archc {__version__}\n"


@pytest.mark.parametrize("command", [[], ["train"], ["export"]])
def test_dash_h_is_help(cli, command: list[str]) -> None:
    short, long = cli(*command, "-h"), cli(*command, "--help")
    assert short.code == long.code == 0
    assert short.out == long.out and "Usage: archc" in short.out


def test_completion_script_and_completions() -> None:
    # typer detects the running shell (under make: sh, which it does not
    # support) unless told to take the shell named after --show-completion
    env = {**os.environ, "COLUMNS": "120", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    script = subprocess.run(
        [sys.executable, "-m", "archcompile", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert script.returncode == 0, script.stderr
    assert "_ARCHC_COMPLETE=complete_bash" in script.stdout
    assert "complete -o default -F _archc_completion archc" in script.stdout
    # what the installed script runs at each <TAB>
    words = {"_ARCHC_COMPLETE": "complete_bash", "COMP_CWORD": "4"}
    words["COMP_WORDS"] = "archc train x.yaml --optimizer "
    offered = subprocess.run(
        [sys.executable, "-m", "archcompile"],
        capture_output=True,
        text=True,
        env={**env, **words},
        check=False,
    )
    assert offered.returncode == 0, offered.stderr
    assert offered.stdout.split() == ["sgd", "sgd-momentum", "adamw"]


CHOICES = [
    (["train", TINY], "--optimizer", ["sgd", "sgd-momentum", "adamw"]),
    (["train", TINY], "--schedule", ["constant", "cosine", "onecycle"]),
    (["train", TINY], "--precision", ["fp32", "bf16"]),
    (["eval", TINY, "runs/none"], "--runtime", ["torch", "generated", "onnxruntime"]),
    (["export", TINY, "-o", "x.onnx"], "--format", ["onnx", "torchscript"]),
    (["export", TINY, "-o", "x.onnx"], "--source", ["live", "generated"]),
]


@pytest.mark.parametrize(("command", "option", "choices"), CHOICES, ids=[c[1] for c in CHOICES])
def test_choices_are_listed_and_checked(
    cli, monkeypatch: pytest.MonkeyPatch, command: list, option: str, choices: list[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    listed = cli(command[0], "--help").out
    row = next(line for line in listed.splitlines() if f" {option} " in line)
    assert f"<{'|'.join(choices)}>" in row
    result = cli(*command, option, "bogus")
    assert result.code == 2
    error, hint = result.err.strip().splitlines()
    quoted = ", ".join(repr(c) for c in choices)
    assert error == (
        f"archc {command[0]}: error: Invalid value for '{option}': 'bogus' is not one of {quoted}."
    )
    assert hint == f"  hint: see archc {command[0]} --help"


COMMANDS = [[], ["shapes"], ["build"], ["diff"], ["train"], ["eval"], ["graph"], ["schema"]]
COMMANDS += [["export"], ["import-weights"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "archc" for c in COMMANDS])
def test_flags_show_no_type(cli, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    result = cli(*command, "--help")
    assert result.code == 0 and "Usage: archc" in result.out
    assert "<bool>" not in result.out
    assert "-h " in result.out  # -h is listed next to --help
