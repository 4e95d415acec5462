"""One owner per run folder: a second ``archc train`` on a folder in use fails
at once naming the holder's pid, and archc never trains into a non-empty
folder it did not create (unless --resume or --force)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.rundir import LOCK, MARKER, RunFolder

pytestmark = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)

TINY = "tests/specs/tiny_cnn.yaml"
SMALL = ["--batch-size", "32", "--limit-train", "64", "--limit-test", "16"]


#: a process that takes the lock of argv[1], says so, and holds it until stdin closes
HOLD = """import sys
from archcompile.train.rundir import RunFolder
RunFolder(sys.argv[1]).open(False, False)
print("locked", flush=True)
sys.stdin.read()
"""


def _train(cli, out: Path, *extra: str):
    return cli("train", TINY, "--max-steps", "1", *SMALL, "--out", out, *extra)


def test_second_train_on_a_folder_in_use_fails_at_once_naming_the_pid(cli, tmp_path) -> None:
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD,
            str(out),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        result = _train(cli, out)
        assert result.code == 1
        assert result.err.splitlines()[0] == (
            f"{out}: error: another archc train (pid {holder.pid}) is writing to this folder"
        )
        assert not (out / "metrics.jsonl").exists()
    finally:
        holder.communicate("")
    assert _train(cli, out).code == 0  # the lock went with its process


@pytest.mark.parametrize("resume", [False, True])
def test_the_lock_is_held_in_process_too(cli, tmp_path: Path, resume: bool) -> None:
    out = tmp_path / "run"
    assert _train(cli, out).code == 0
    before = (out / "metrics.jsonl").read_bytes()
    folder = RunFolder(out).open(True, False)
    try:
        result = _train(cli, out, *(["--resume", "--max-steps", "2"] if resume else ["--force"]))
        assert result.code == 1 and f"(pid {os.getpid()})" in result.err
        assert (out / "metrics.jsonl").read_bytes() == before
    finally:
        folder.close()


FOREIGN = {
    "their metrics": {"metrics.jsonl": '{"mine": true}\n'},
    "their notes": {"notes.txt": "keep me"},
    "a hidden file": {".env": "SECRET=1"},
    "a subfolder": {"data/x": "1"},
}


@pytest.mark.parametrize(
    "files",
    [
        f if name in ("their metrics", "a hidden file") else pytest.param(f, marks=pytest.mark.slow)
        for name, f in FOREIGN.items()
    ],
    ids=list(FOREIGN),
)
def test_a_folder_archc_did_not_create_is_refused_unless_forced(cli, tmp_path, files) -> None:
    out = tmp_path / "theirs"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    result = _train(cli, out)
    assert result.code == 1
    assert "non-empty folder that archc did not create" in result.err
    assert "--force" in result.err
    for name, text in files.items():
        assert (out / name).read_text() == text
    assert not (out / MARKER).exists()
    assert _train(cli, out, "--force").code == 0
    assert (out / MARKER).exists()


def test_an_empty_existing_folder_and_our_own_folder_are_accepted(cli, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert _train(cli, out).code == 0
    result = _train(cli, out)
    assert result.code == 1 and "already holds a checkpoint" in result.err
    assert "--force" in result.err
    assert _train(cli, out, "--force").code == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == [1]


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_out_at_something_that_is_not_a_folder_is_one_line(cli, tmp_path, kind) -> None:
    out = tmp_path / "x"
    if kind == "file":
        out.write_text("mine")
    else:
        os.mkfifo(out)
    result = _train(cli, out)
    assert result.code == 1
    assert result.err.splitlines() == [
        f"{out}: error: exists and is not a folder",
        "  hint: choose another --out",
    ]
    if kind == "file":
        assert out.read_text() == "mine"


def test_out_below_a_file_is_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = _train(cli, tmp_path / "f" / "run")
    assert result.code == 1 and "internal error" not in result.err
    assert "cannot create the output folder: Not a directory" in result.err


def test_a_spec_named_dots_does_not_train_into_the_working_directory(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "...yaml").write_text((ROOT / TINY).read_text())
    (tmp_path / "mine.txt").write_text("keep")
    monkeypatch.chdir(tmp_path)
    result = cli("train", "...yaml", "--max-steps", "1", *SMALL)
    assert result.code == 0, result.err
    assert (tmp_path / "runs" / "spec" / MARKER).exists()
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / LOCK).exists()


def test_resume_in_a_foreign_folder_is_refused_and_leaves_no_marker(cli, tmp_path) -> None:
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    result = _train(cli, out, "--resume")
    assert result.code == 1 and "archc did not create" in result.err
    assert not (out / MARKER).exists()


def test_a_folder_that_cannot_be_created_is_one_line(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only working directory (simulated: the tests may run as root)."""

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    result = _train(cli, tmp_path / "run")
    assert result.code == 1 and "internal error" not in result.err
    assert result.err.splitlines()[0] == (
        f"{tmp_path / 'run'}: error: cannot create the output folder: Permission denied"
    )


@pytest.mark.slow
def test_a_run_of_the_older_flat_layout_resumes_and_evaluates(cli, tmp_path: Path) -> None:
    """Runs written before step folders (files directly in --out) still work."""
    from archcompile.train import checkpoint

    out = tmp_path / "run"
    assert _train(cli, out).code == 0
    current = checkpoint.resolve(out)
    for name in (checkpoint.MODEL_FILE, checkpoint.STATE_FILE, checkpoint.JSON_FILE):
        (current / name).rename(out / name)
    current.rmdir()
    for name in (checkpoint.POINTER, MARKER):
        (out / name).unlink()
    assert checkpoint.load(out).step == 1
    assert cli("eval", TINY, out, "--limit-test", "8").code == 0
    resumed = cli("train", TINY, "--max-steps", "2", *SMALL, "--out", out, "--resume")
    assert resumed.code == 0, resumed.err
    assert checkpoint.load(out).step == 2 and (out / MARKER).exists()
