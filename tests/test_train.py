"""Training and evaluation on small subsets of the real Fashion-MNIST files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from safetensors.torch import load_file

import archcompile
from archcompile.errors import CheckpointError, TrainingError
from archcompile.train import checkpoint
from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.runner import evaluate_checkpoint
from archcompile.train.trainer import TrainConfig, train

pytestmark = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)

TINY = "tests/specs/tiny_cnn.yaml"
SMALL = {"batch_size": 32, "limit_train": 256, "limit_test": 200}  # 8 steps per epoch


def _spec(path: str = TINY, **overrides: str) -> archcompile.Spec:
    return archcompile.load_spec(path, overrides or None)


def _ckpt(out: Path) -> Path:
    """The current checkpoint folder of a training output folder."""
    return checkpoint.resolve(out)


def _train_records(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in records]


def test_loss_decreases_and_files_are_written(tmp_path: Path) -> None:
    config = TrainConfig(
        max_steps=40, optimizer="adamw", lr=3e-3, batch_size=32, limit_train=640, limit_test=200
    )
    result = train(_spec(), config, tmp_path)
    train_loss = [r["loss"] for r in _train_records(tmp_path) if r["type"] == "train"]
    assert len(train_loss) == 40
    first, last = sum(train_loss[:5]) / 5, sum(train_loss[-5:]) / 5
    assert last < 0.75 * first, (first, last)
    assert result.final is not None and result.final.count == 200
    assert result.final.accuracy > 0.5
    # metrics: one object per logged step and per evaluation (two epochs of 20 steps)
    records = _train_records(tmp_path)
    assert [r["step"] for r in records if r["type"] == "eval"] == [20, 40]
    assert set(records[0]) == {"type", "step", "epoch", "loss", "accuracy", "lr"}
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((_ckpt(tmp_path) / "checkpoint.json").read_text())
    assert meta["step"] == 40 and meta["spec"]["sha256"] == _spec().sha256
    assert meta["spec"]["document"]["name"] == "TinyCNN"
    assert set(load_file(_ckpt(tmp_path) / "model.safetensors")) == set(
        archcompile.build(_spec()).state_dict()
    )


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    config = TrainConfig(max_steps=6, optimizer="sgd-momentum", lr=0.05, augment=True, **SMALL)
    train(_spec(), config, tmp_path / "a")
    train(_spec(), config, tmp_path / "b")
    assert _train_records(tmp_path / "a") == _train_records(tmp_path / "b")
    other = config.model_copy(update={"seed": 1})
    train(_spec(), other, tmp_path / "c")
    assert _train_records(tmp_path / "a") != _train_records(tmp_path / "c")


def test_ctrl_c_writes_a_checkpoint_and_resume_continues_exactly(tmp_path: Path) -> None:
    config = TrainConfig(
        max_steps=12, optimizer="adamw", lr=1e-3, schedule="onecycle", augment=True, **SMALL
    )
    straight = train(_spec(), config, tmp_path / "straight")

    def interrupt(step: int) -> None:
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    stopped = train(_spec(), config, tmp_path / "resumed", on_step=interrupt)
    assert stopped.interrupted and stopped.steps == 6  # the step under way completes first
    assert json.loads((_ckpt(tmp_path / "resumed") / "checkpoint.json").read_text())["step"] == 6
    resumed = train(_spec(), config, tmp_path / "resumed", resume=True)
    assert resumed.steps == 12 and not resumed.interrupted
    assert _train_records(tmp_path / "straight") == _train_records(tmp_path / "resumed")
    a = load_file(_ckpt(tmp_path / "straight") / "model.safetensors")
    b = load_file(_ckpt(tmp_path / "resumed") / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.final.accuracy == resumed.final.accuracy


def test_resume_refuses_changed_flags_and_fresh_runs_refuse_to_overwrite(tmp_path: Path) -> None:
    config = TrainConfig(max_steps=2, **SMALL)
    train(_spec(), config, tmp_path)
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        train(_spec(), config, tmp_path)
    with pytest.raises(CheckpointError, match="--lr was 0.1, now 0.2"):
        train(_spec(), config.model_copy(update={"lr": 0.2, "max_steps": 4}), tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="does not fit"):
        train(_spec(num_classes="10"), config, tmp_path, resume=True) if False else train(
            archcompile.load_spec_text(
                Path(TINY).read_text().replace("out: 16", "out: 12"), "tiny12.yaml"
            ),
            config.model_copy(update={"max_steps": 4}),
            tmp_path,
            resume=True,
        )


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    config = TrainConfig(max_steps=40, lr=1e4, checkpoint_every=1, **SMALL)
    with pytest.raises(TrainingError) as info:
        train(_spec(), config, tmp_path)
    message = info.value.first.message
    assert message.startswith("the loss is no longer finite at step ")
    step = int(message.split("at step ")[1].split()[0])
    meta = json.loads((_ckpt(tmp_path) / "checkpoint.json").read_text())
    assert meta["step"] == step - 1
    assert f"the last good checkpoint (step {step - 1})" in info.value.first.hint
    weights = load_file(_ckpt(tmp_path) / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_trained_weights_load_into_generated_source(tmp_path: Path) -> None:
    spec = _spec()
    train(spec, TrainConfig(max_steps=3, **SMALL), tmp_path)
    source_path = tmp_path / "tiny_generated.py"
    source_path.write_text(archcompile.generate_source(spec))
    namespace: dict = {}
    exec(compile(source_path.read_text(), str(source_path), "exec"), namespace)  # noqa: S102
    generated = namespace["TinyCNN"]()
    generated.load_state_dict(load_file(_ckpt(tmp_path) / "model.safetensors"), strict=True)
    live = archcompile.build(spec)
    live.load_state_dict(load_file(_ckpt(tmp_path) / "model.safetensors"), strict=True)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(generated.eval()(x), live.eval()(x))


def test_eval_checkpoint_and_refusals(tmp_path: Path) -> None:
    train(_spec(), TrainConfig(max_steps=8, optimizer="adamw", lr=3e-3, **SMALL), tmp_path)
    evaluation = evaluate_checkpoint(_spec(), tmp_path, DEFAULT_DATA_DIR, limit_test=300)
    assert evaluation.count == 300 and evaluation.confusion.shape == (10, 10)
    assert 0 <= evaluation.accuracy <= 1 and len(evaluation.per_class) == 10
    with pytest.raises(
        CheckpointError, match=r"does not fit .*head\.1\.weight \[10, 784\] vs \[5, 784\]"
    ):
        evaluate_checkpoint(_spec(num_classes="5"), tmp_path, DEFAULT_DATA_DIR, limit_test=10)
    renamed = archcompile.load_spec_text(
        Path(TINY).read_text().replace("TinyCNN", "Renamed"), "renamed.yaml"
    )
    with pytest.raises(CheckpointError, match="different spec"):
        evaluate_checkpoint(renamed, tmp_path, DEFAULT_DATA_DIR, limit_test=10)
    assert (
        evaluate_checkpoint(
            renamed, tmp_path, DEFAULT_DATA_DIR, limit_test=10, allow_spec_change=True
        ).count
        == 10
    )


@pytest.mark.parametrize("damage", ["truncate", "garbage", "json"])
def test_corrupt_checkpoints_are_one_line_errors(tmp_path: Path, damage: str, cli) -> None:
    train(_spec(), TrainConfig(max_steps=1, **SMALL), tmp_path)
    if damage == "truncate":
        data = (_ckpt(tmp_path) / "model.safetensors").read_bytes()
        (_ckpt(tmp_path) / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        (_ckpt(tmp_path) / "model.safetensors").write_bytes(b"\x00" * 100)
    else:
        (_ckpt(tmp_path) / "checkpoint.json").write_text("{not json")
    result = cli("eval", TINY, tmp_path, "--limit-test", "10")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "checkpoint" in result.err or "safetensors" in result.err


def test_cli_train_and_eval(cli, tmp_path: Path) -> None:
    result = cli(
        "train",
        TINY,
        "--max-steps",
        "4",
        "--batch-size",
        "32",
        "--limit-train",
        "128",
        "--limit-test",
        "64",
        "--out",
        tmp_path / "run",
    )
    assert result.code == 0, result.err
    assert "Training summary" in result.out and "final test accuracy" in result.out
    # not a terminal: plain status lines instead of a progress bar
    assert "  step 4/4: loss " in result.out
    result = cli("eval", TINY, tmp_path / "run", "--limit-test", "64", "--plot", tmp_path / "c.png")
    assert result.code == 0 and "Confusion matrix" in result.out and "Ankle boot" in result.out
    assert (tmp_path / "c.png").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--epochs", "1", "--max-steps", "3"], 2, "give --epochs or --max-steps, not both"),
        (["--optimizer", "adam"], 2, "--optimizer"),
        (["--data-dir", "/nonexistent"], 1, "file not found"),
    ],
)
def test_cli_train_errors(cli, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    result = cli("train", TINY, "--out", tmp_path, *args)
    assert result.code == code and message in result.err, result.err
    assert "Traceback" not in result.err


def test_spec_with_the_wrong_number_of_classes(cli, tmp_path: Path) -> None:
    result = cli("train", TINY, "--set", "num_classes=7", "--out", tmp_path)
    assert result.code == 1 and "needs [N, 10] class scores" in result.err


def test_two_processes_match_one_with_the_same_global_batch(tmp_path: Path) -> None:
    """DDP over gloo with 2 CPU processes vs a single process, same global batch.

    Gradients are averaged over the same 32 examples either way; only the order
    of floating-point sums differs, so weights agree to about 1e-6.
    """
    args = [
        "train",
        TINY,
        "--max-steps",
        "6",
        "--batch-size",
        "32",
        "--limit-train",
        "256",
        "--limit-test",
        "100",
        "--optimizer",
        "sgd-momentum",
        "--lr",
        "0.05",
        "--no-channels-last",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, "-m", "archcompile", *args, "--out", str(tmp_path / "one")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert single.returncode == 0, single.stderr
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "archcompile",
            *args,
            "--nproc",
            "2",
            "--out",
            str(tmp_path / "two"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert double.returncode == 0, double.stderr + double.stdout
    a = load_file(_ckpt(tmp_path / "one") / "model.safetensors")
    b = load_file(_ckpt(tmp_path / "two") / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    one, two = _train_records(tmp_path / "one"), _train_records(tmp_path / "two")
    assert len(one) == len(two)
    for x, y in zip(one, two):
        assert x["step"] == y["step"] and abs(x["loss"] - y["loss"]) < 1e-5
    assert json.loads((_ckpt(tmp_path / "two") / "checkpoint.json").read_text())["step"] == 6
