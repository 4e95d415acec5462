"""Crash-safe checkpoints: ``archc train --resume`` killed (SIGKILL) at every
step of a checkpoint save, through the fault-injection variable ARCHC_FAULT;
afterwards ``--resume`` and ``eval`` work and at most the interrupted step is
lost. Also: a torn last line of metrics.jsonl, hand-edited or crafted
checkpoints, a full disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from safetensors.torch import load_file, save_file

import archcompile
from archcompile.errors import CheckpointError
from archcompile.train import checkpoint
from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.runner import evaluate_checkpoint
from archcompile.train.trainer import TrainConfig, train

pytestmark = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)

TINY = "tests/specs/tiny_cnn.yaml"
FLAGS = {"batch_size": 32, "limit_train": 128, "limit_test": 32, "checkpoint_every": 1}

#: each point of the save sequence, and the step that must be current after
#: a kill there while saving step 3 over step 2
POINTS = {
    "model": 2,  # model.safetensors written into step-00000003.tmp
    "optimizer": 2,
    "meta": 2,  # all three files written, folder not yet renamed
    "folder": 2,  # folder flushed, not yet renamed
    "rename": 2,  # renamed to step-00000003, LATEST still names step 2
    "pointer": 3,  # LATEST names step 3; step 2 not yet removed
    "cleanup": 3,  # step 2 removed
}


def _cli_args(out: Path, max_steps: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "archcompile",
        "train",
        TINY,
        "--out",
        str(out),
        "--max-steps",
        str(max_steps),
        *(f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items()),
    ]


def _records(out: Path) -> list[int]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if '"train"' in line]


#: two points run by `make test` (just before and just after the switch); all by `make test-slow`
FAST_POINTS = ("rename", "pointer")


@pytest.mark.parametrize(
    "point",
    [p if p in FAST_POINTS else pytest.param(p, marks=pytest.mark.slow) for p in POINTS],
)
def test_kill_at_every_step_of_a_save_loses_at_most_that_step(tmp_path: Path, point: str) -> None:
    out = tmp_path / "run"
    spec = archcompile.load_spec(TINY)
    config = TrainConfig(max_steps=2, **FLAGS)
    train(spec, config, out)
    env = {**os.environ, "ARCHC_FAULT": f"after:{point}"}
    killed = subprocess.run(
        [*_cli_args(out, 4), "--resume"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert checkpoint.load(out).step == POINTS[point]
    assert evaluate_checkpoint(spec, out, DEFAULT_DATA_DIR, limit_test=16).count == 16
    # a second run can take the folder at once: the dead run's lock went with it
    resumed = train(spec, config.model_copy(update={"max_steps": 4}), out, resume=True)
    assert resumed.steps == 4 and checkpoint.load(out).step == 4
    assert _records(out) == [1, 2, 3, 4]
    steps = sorted(p.name for p in out.iterdir() if p.name.startswith("step-"))
    assert steps == ["step-00000004"]


@pytest.mark.slow
def test_kill_during_the_first_save_leaves_no_checkpoint_and_a_fresh_run_works(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "ARCHC_FAULT": "after:meta"}
    killed = subprocess.run(
        _cli_args(out, 2), cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    with pytest.raises(CheckpointError, match="no checkpoint.json here"):
        checkpoint.load(out)
    result = train(archcompile.load_spec(TINY), TrainConfig(max_steps=2, **FLAGS), out)
    assert result.steps == 2 and checkpoint.load(out).step == 2


def test_torn_last_metrics_line_is_ignored_with_a_warning_and_truncated(tmp_path: Path) -> None:
    spec = archcompile.load_spec(TINY)
    config = TrainConfig(max_steps=2, **FLAGS)
    train(spec, config, tmp_path)
    with open(tmp_path / "metrics.jsonl", "a") as handle:
        handle.write('{"type": "train", "step": 3, "lo')  # a crash during a write
    train(spec, config.model_copy(update={"max_steps": 3}), tmp_path, resume=True)
    assert _records(tmp_path) == [1, 2, 3]
    assert all(line.endswith("}") for line in (tmp_path / "metrics.jsonl").read_text().splitlines())

    from archcompile.train.rundir import read_metrics

    warnings: list[str] = []
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "lo')
    assert read_metrics(tmp_path / "metrics.jsonl", warnings.append) == [{"step": 1}]
    assert "incomplete last line" in warnings[0] and "metrics.jsonl:2" in warnings[0]
    (tmp_path / "metrics.jsonl").write_text('{"step": 1\n{"step": 2}\n')
    with pytest.raises(CheckpointError, match="corrupt"):
        read_metrics(tmp_path / "metrics.jsonl")


def _edit_meta(out: Path, change) -> None:
    path = checkpoint.resolve(out) / checkpoint.JSON_FILE
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def _craft_state(out: Path, change) -> None:
    """Change optimizer.safetensors and record its new hash, as an attacker would."""
    folder = checkpoint.resolve(out)
    tensors = load_file(folder / checkpoint.STATE_FILE)
    change(tensors)
    save_file(tensors, folder / checkpoint.STATE_FILE)
    digest = checkpoint._sha256(folder / checkpoint.STATE_FILE)
    _edit_meta(out, lambda m: m["files"].__setitem__(checkpoint.STATE_FILE, digest))


DAMAGE = {
    "step is a string": lambda out: _edit_meta(out, lambda m: m.__setitem__("step", "x")),
    "step is negative": lambda out: _edit_meta(out, lambda m: m.__setitem__("step", -4)),
    "files is a list": lambda out: _edit_meta(out, lambda m: m.__setitem__("files", [])),
    "config missing": lambda out: _edit_meta(out, lambda m: m.pop("config")),
    "param_groups missing": lambda out: _edit_meta(out, lambda m: m.__setitem__("optimizer", {})),
    "scheduler wrong": lambda out: _edit_meta(
        out, lambda m: m.__setitem__("scheduler", {"last_epoch": "x"})
    ),
    "meta is a list": lambda out: (checkpoint.resolve(out) / "checkpoint.json").write_text("[]"),
    "rng tensor crafted": lambda out: _craft_state(
        out, lambda t: t.__setitem__("rng.torch", torch.zeros(3, dtype=torch.float32))
    ),
    "rng tensor missing": lambda out: _craft_state(out, lambda t: t.pop("rng.torch")),
    "optimizer key crafted": lambda out: _craft_state(
        out, lambda t: t.__setitem__("optimizer.x.y", torch.zeros(1))
    ),
}


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("template") / "run"
    train(archcompile.load_spec(str(ROOT / TINY)), TrainConfig(max_steps=1, **FLAGS), out)
    return out


#: run by `make test`; the others by `make test-slow`
FAST_DAMAGE = ("step is a string", "scheduler wrong", "rng tensor crafted")


@pytest.mark.parametrize(
    "damage",
    [d if d in FAST_DAMAGE else pytest.param(d, marks=pytest.mark.slow) for d in DAMAGE],
)
def test_edited_or_crafted_checkpoints_are_one_located_line(
    tmp_path: Path, damage, cli, one_step_run: Path
) -> None:
    out = tmp_path / "run"
    shutil.copytree(one_step_run, out)
    DAMAGE[damage](out)
    args = [f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items()]
    result = cli("train", TINY, "--out", out, "--max-steps", "2", "--resume", *args)
    assert result.code == 1, result.err
    lines = result.err.strip().splitlines()
    assert "checkpoint.json: error: " in lines[0], result.err
    assert "internal error" not in result.err


def test_full_disk_during_a_save_is_one_line_and_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = archcompile.load_spec(TINY)
    config = TrainConfig(max_steps=2, **FLAGS)
    train(spec, config, tmp_path)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(CheckpointError, match="No space left on device") as info:
        train(spec, config.model_copy(update={"max_steps": 3}), tmp_path, resume=True)
    assert "previous checkpoint (step-00000002) is intact" in info.value.first.message
    monkeypatch.undo()
    assert checkpoint.load(tmp_path).step == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_refuses_another_data_dir_and_gives_advice_train_can_follow(
    tmp_path: Path, cli, one_step_run: Path
) -> None:
    out = tmp_path / "run"
    shutil.copytree(one_step_run, out)
    elsewhere = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, elsewhere)
    args = [f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items()]
    base = ["train", TINY, "--out", out, "--max-steps", "2", "--resume", *args]
    result = cli(*base, "--data-dir", elsewhere)
    assert result.code == 1 and "cannot resume exactly: --data-dir was" in result.err
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text((ROOT / TINY).read_text().replace("TinyCNN", "Renamed"))
    base[1] = renamed
    result = cli(*base)
    assert result.code == 1 and "different spec" in result.err
    assert "--allow-spec-change" not in result.err  # train has no such option
    assert "resume with the spec the run was trained with" in result.err
