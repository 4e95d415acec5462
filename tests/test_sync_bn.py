"""``--sync-bn``: two gloo processes with SyncBatchNorm match one process on the
same global batch; without it, BatchNorm sees half the batch and they differ."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from safetensors.torch import load_file
from torch import nn

from archcompile.train import checkpoint
from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.syncbn import SyncBatchNorm2d, convert_sync_bn

TINY_BN = (
    (ROOT / "tests/specs/tiny_cnn.yaml")
    .read_text()
    .replace("conv: {activation: relu}", "conv: {activation: relu, norm: batch}")
)


def _run(tmp_path: Path, name: str, *extra: str) -> dict[str, torch.Tensor]:
    spec = tmp_path / "tiny_bn.yaml"
    spec.write_text(TINY_BN)
    args = ["train", str(spec), "--max-steps", "3", "--batch-size", "32", "--limit-train", "96"]
    args += ["--limit-test", "32", "--optimizer", "sgd-momentum", "--lr", "0.05"]
    args += ["--no-channels-last", "--threads", "1", "--out", str(tmp_path / name), *extra]
    result = subprocess.run(
        [sys.executable, "-m", "archcompile", *args],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return load_file(checkpoint.resolve(tmp_path / name) / checkpoint.MODEL_FILE)


def _distance(a: dict, b: dict) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed",
)
def test_two_processes_with_sync_bn_match_one(tmp_path: Path) -> None:
    one = _run(tmp_path, "one")
    synced = _run(tmp_path, "synced", "--nproc", "2", "--sync-bn")
    apart = _run(tmp_path, "apart", "--nproc", "2")
    assert any(k.endswith("running_mean") for k in one)
    assert _distance(one, synced) < 1e-5
    assert _distance(one, apart) > 1e-3  # the test can tell BatchNorm per process


def test_convert_keeps_state_and_single_process_behaviour() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4)))
    model[1].running_mean.fill_(0.5)
    keys = list(model.state_dict())
    x = torch.randn(8, 1, 6, 6)
    expected = model(x)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    converted = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4))
    )
    converted[1].running_mean.fill_(0.5)
    assert convert_sync_bn(converted) == 2
    assert isinstance(converted[2][0], SyncBatchNorm2d)
    assert list(converted.state_dict()) == keys
    assert torch.equal(converted(x), expected)  # no process group: plain BatchNorm
    assert all(torch.equal(v, reference[k]) for k, v in converted.state_dict().items())
