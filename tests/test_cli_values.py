"""Every command-line value checked at the edge: one 'archc CMD: error:' line
and exit 2, before any work; environment variables of torchrun checked before
use; --json always valid JSON; torch's refusals as located one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.evaluate import Evaluation
from archcompile.train.trainer import TrainConfig

TINY = "tests/specs/tiny_cnn.yaml"

TRAIN_VALUES = {
    "--lr inf": ["--lr", "inf"],
    "--lr nan": ["--lr", "nan"],
    "--lr 0": ["--lr", "0"],
    "--lr -1": ["--lr", "-1"],
    "--seed 2**64": ["--seed", str(2**64)],
    "--seed -1": ["--seed", "-1"],
    "--nproc 0": ["--nproc", "0"],
    "--nproc -3": ["--nproc", "-3"],
    "--batch-size 0": ["--batch-size", "0"],
    "--batch-size -1": ["--batch-size", "-1"],
    "--limit-test 0": ["--limit-test", "0"],
    "--limit-test -1": ["--limit-test", "-1"],
    "--limit-train 0": ["--limit-train", "0"],
    "--epochs 0": ["--epochs", "0"],
    "--max-steps 0": ["--max-steps", "0"],
    "--log-every 0": ["--log-every", "0"],
    "--checkpoint-every 0": ["--checkpoint-every", "0"],
    "--warmup-steps -1": ["--warmup-steps", "-1"],
    "--label-smoothing 1": ["--label-smoothing", "1"],
    "--label-smoothing nan": ["--label-smoothing", "nan"],
    "--weight-decay -1": ["--weight-decay", "-1"],
    "--weight-decay inf": ["--weight-decay", "inf"],
    "--max-params 0": ["--max-params", "0"],
    "--optimizer bogus": ["--optimizer", "bogus"],
    "--epochs and --max-steps": ["--epochs", "1", "--max-steps", "1"],
}


def _assert_usage_error(result, option: str) -> None:
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith(
        ("archc train: error:", "archc eval: error:", "archc shapes: error:", "archc: error:")
    ), result.err
    assert option in lines[0], result.err
    assert len(lines) <= 2 and "internal error" not in result.err


@pytest.mark.parametrize("args", list(TRAIN_VALUES.values()), ids=list(TRAIN_VALUES))
def test_train_values_are_checked_before_any_work(cli, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "run"
    result = cli("train", TINY, "--out", out, *args)
    _assert_usage_error(result, args[0])
    assert not out.exists()


EVAL_VALUES = {
    "--batch-size 0": ["--batch-size", "0"],
    "--batch-size -1": ["--batch-size", "-1"],
    "--limit-test 0": ["--limit-test", "0"],
    "--limit-test -1": ["--limit-test", "-1"],
    "--max-params 0": ["--max-params", "0"],
}


@pytest.mark.parametrize("args", list(EVAL_VALUES.values()), ids=list(EVAL_VALUES))
def test_eval_values_are_checked(cli, tmp_path: Path, args: list[str]) -> None:
    _assert_usage_error(cli("eval", TINY, tmp_path, *args), args[0])


@pytest.mark.parametrize("args", [["--batch", "0"], ["--depth", "0"], ["--batch", "x"]])
def test_shapes_values_are_checked(cli, args: list[str]) -> None:
    _assert_usage_error(cli("shapes", TINY, *args), args[0])


ENVIRONMENTS = {
    "WORLD_SIZE=2 alone": ({"WORLD_SIZE": "2"}, "MASTER_ADDR"),
    "WORLD_SIZE=0": ({"WORLD_SIZE": "0"}, "WORLD_SIZE"),
    "WORLD_SIZE=x": ({"WORLD_SIZE": "x"}, "WORLD_SIZE"),
    "RANK=-1": ({"RANK": "-1"}, "RANK"),
    "RANK beyond the world": (
        {"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"},
        "RANK",
    ),
    "MASTER_PORT=0": (
        {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "x", "MASTER_PORT": "0"},
        "MASTER_PORT",
    ),
}


@pytest.mark.parametrize("case", list(ENVIRONMENTS))
def test_torchrun_variables_are_checked_before_use(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    variables, name = ENVIRONMENTS[case]
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "run"
    result = cli("train", TINY, "--out", out, "--max-steps", "1")
    assert result.code == 2, result.err
    assert result.err.startswith("archc: error: ") and name in result.err
    assert "internal error" not in result.err and not out.exists()


def test_the_largest_seed_is_accepted() -> None:
    assert TrainConfig(seed=2**64 - 1).seed == 2**64 - 1
    torch.manual_seed(2**64 - 1)  # what the trainer does with it
    with pytest.raises(ValueError, match="less than or equal"):
        TrainConfig(seed=2**64)
    with pytest.raises(ValueError, match="finite"):
        TrainConfig(lr=math.inf)


def test_eval_json_is_valid_json_when_the_loss_is_nan(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from archcompile.train import runner

    confusion = torch.zeros(10, 10, dtype=torch.int64)
    confusion[0, 0] = 3
    names = tuple(f"c{i}" for i in range(10))
    evaluation = Evaluation(math.nan, 1.0, confusion, names)
    monkeypatch.setattr(runner, "evaluate_checkpoint", lambda *a, **k: evaluation)
    result = cli("eval", TINY, tmp_path, "--json")
    assert result.code == 0, result.err
    document = json.loads(result.out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert document["loss"] is None and document["nonfinite"] == ["loss"]
    assert document["accuracy"] == 1.0 and document["confusion"][0][0] == 3


needs_data = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed",
)

BN_1X1 = """archc: 1
name: Tiny1x1
input: [1, 4, 4]
blocks:
  body:
    - conv: {out: 4, kernel: 4, norm: batch}
    - flatten
    - linear: {out: 10}
"""


@needs_data
def test_batchnorm_on_a_single_value_is_one_located_line(cli, tmp_path: Path) -> None:
    spec = tmp_path / "bn.yaml"
    spec.write_text(BN_1X1)
    args = ["--batch-size", "1", "--limit-train", "4", "--limit-test", "4", "--max-steps", "1"]
    result = cli("train", spec, "--out", tmp_path / "run", *args)
    assert result.code == 1, result.err
    assert "bn.yaml: error: the model fails on a batch of 1 at step 1" in result.err
    assert "internal error" not in result.err


HUGE = """archc: 1
name: Huge
input: [1, 46340, 46340]
blocks:
  body: [global_avgpool, flatten, {linear: {out: 10}}]
"""


@needs_data
def test_an_input_too_large_for_memory_is_refused_before_allocating(cli, tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE)
    result = cli("train", spec, "--out", tmp_path / "run", "--max-steps", "1")
    assert result.code == 1, result.err
    assert "GiB; this machine has" in result.err and "internal error" not in result.err


def test_nproc_with_a_broken_spec_reports_once_without_relaunching(cli, tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        "archc: 1\nname: Net\ninput: [1, 8, 8]\nblocks: {b: [{conv: {out: 0, kernel: 3}}]}\n"
    )
    result = cli("train", spec, "--nproc", "2", "--out", tmp_path / "run")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "torch" not in result.err and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_nproc_reports_a_failure_of_its_processes_once_without_torchrun_traceback(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    from conftest import ROOT

    args = ["train", TINY, "--nproc", "2", "--out", str(tmp_path / "run")]
    result = subprocess.run(
        [sys.executable, "-m", "archcompile", *args, "--data-dir", str(tmp_path / "none")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr
