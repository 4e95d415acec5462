"""Thread count and OpenMP wait policy of ``archc train`` / ``archc eval``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from archcompile.cli import _fixed_threads
from archcompile.train import threads
from archcompile.train.threads import ThreadGovernor, auto_threads, runnable_others, share


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_passive_wait_policy_unless_the_environment_sets_one() -> None:
    env: dict[str, str] = {}
    assert threads.prepare(env) == "PASSIVE" and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert threads.prepare(env) == "ACTIVE"


def test_the_cli_sets_the_policy_before_torch_is_imported() -> None:
    """OpenMP reads OMP_WAIT_POLICY when torch loads: importing the CLI (which
    sets it first thing in ``run``) must not load torch."""
    code = "import sys, archcompile.cli; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip() == "False", out.stderr
    code = (
        "import os, sys; os.environ.pop('OMP_WAIT_POLICY', None); sys.argv = ['archc', '--version']\n"
        "from archcompile import cli\n"
        "try:\n    cli.run()\nexcept SystemExit:\n    pass\n"
        "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stdout.splitlines()[-1] == "PASSIVE False", out.stderr


def test_runnable_others_reads_proc_loadavg(tmp_path: Path) -> None:
    fake = tmp_path / "loadavg"
    fake.write_text("1.50 0.80 0.40 3/412 12345\n")
    assert runnable_others(samples=2, path=str(fake)) == 2  # less this thread
    fake.write_text("garbage")
    assert runnable_others(samples=1, path=str(fake)) is None
    assert runnable_others(samples=1, path=str(tmp_path / "missing")) is None


def test_auto_threads_leave_a_core_to_each_other_process() -> None:
    assert auto_threads(2, 0) == 2
    assert auto_threads(2, 1) == 1
    assert auto_threads(2, 5) == 1
    assert auto_threads(8, 3) == 5
    assert auto_threads(4, None) == 4
    assert share(16, {"LOCAL_WORLD_SIZE": "4"}) == 4
    assert share(2, {"LOCAL_WORLD_SIZE": "4"}) == 1
    assert share(6, {}) == 6


def test_governor_fixed_and_automatic(monkeypatch, keep_threads) -> None:
    monkeypatch.setattr(threads, "runnable_others", lambda: 0)
    # more threads than cores: only a fixed count gives that
    ThreadGovernor.start(threads.cores() + 1)
    assert torch.get_num_threads() == threads.cores() + 1
    ThreadGovernor.start(1)
    assert torch.get_num_threads() == 1
    others = iter([0, 1, 1])
    monkeypatch.setattr(threads, "runnable_others", lambda: next(others))
    governor = ThreadGovernor(None, own_share=2)
    assert governor.apply() == 2 and torch.get_num_threads() == 2
    governor.step(7)  # not a re-check step: the load is not read
    assert torch.get_num_threads() == 2
    governor.step(threads.RECHECK_STEPS)
    assert torch.get_num_threads() == 1


def test_threads_option_and_omp_num_threads(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert _fixed_threads(3) == 3 and _fixed_threads(None) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _fixed_threads(None) == 2 and _fixed_threads(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert _fixed_threads(None) is None


def test_cli_threads_option(cli, tmp_path: Path, keep_threads) -> None:
    result = cli("train", "tests/specs/tiny_cnn.yaml", "--threads", "0", "--out", tmp_path)
    assert result.code == 2
    from archcompile.train.data import DEFAULT_DATA_DIR

    if not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST is not installed")
    args = ["--max-steps", "1", "--batch-size", "8", "--limit-train", "8", "--limit-test", "8"]
    result = cli("train", "tests/specs/tiny_cnn.yaml", *args, "--threads", "1", "--out", tmp_path)
    assert result.code == 0, result.err
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    result = cli(
        "eval", "tests/specs/tiny_cnn.yaml", tmp_path, "--limit-test", "8", "--threads", "1"
    )
    assert result.code == 0, result.err
    assert torch.get_num_threads() == 1
