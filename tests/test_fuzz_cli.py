"""Property-based fuzzing of the command line: option values and file-system
situations drawn by hypothesis. The only outcomes allowed are success, a
located error (exit 1) and a usage error (exit 2); never an internal error,
a hang, a raw control character on the terminal, or a file archc did not
write replaced without --force."""

from __future__ import annotations

import os
import stat
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
TINY = "tests/specs/tiny_cnn.yaml"
RAW = {"Cc", "Cf", "Zl", "Zp", "Cs"}

NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "x", "1e400", "-0", "0x10", "1_000", " 3", "nan", "-inf", "٣"]),
)
TRAIN_OPTIONS = [
    "--epochs",
    "--max-steps",
    "--batch-size",
    "--lr",
    "--weight-decay",
    "--warmup-steps",
    "--label-smoothing",
    "--seed",
    "--limit-train",
    "--limit-test",
    "--log-every",
    "--checkpoint-every",
    "--max-params",
    "--nproc",
    "--optimizer",
    "--schedule",
    "--precision",
]


def _relaunches(value: str) -> bool:
    try:
        return int(value) > 1
    except ValueError:
        return False


def _no_raw_controls(*texts: str) -> None:
    for text in texts:
        for line in text.splitlines():
            raw = [ch for ch in line if ch != "\t" and unicodedata.category(ch) in RAW]
            assert not raw, line


def _allowed(result) -> None:
    assert result.code in (0, 1, 2), result.err
    assert "internal error" not in result.err and "Traceback" not in result.err
    _no_raw_controls(result.out, result.err)


@settings(max_examples=25, **SETTINGS)
@given(options=st.lists(st.tuples(st.sampled_from(TRAIN_OPTIONS), NUMBERS), max_size=3))
def test_train_option_values_are_accepted_or_refused_in_one_line(cli, options) -> None:
    # --nproc N > 1 would relaunch under torchrun: covered by test_train.py
    assume(not any(o == "--nproc" and _relaunches(v) for o, v in options))
    # a missing --data-dir stops every accepted combination before any training
    with tempfile.TemporaryDirectory() as tmp:
        args = [x for pair in options for x in pair]
        result = cli("train", TINY, "--out", f"{tmp}/run", "--data-dir", f"{tmp}/none", *args)
        _allowed(result)
        assert result.code != 0


@settings(max_examples=40, **SETTINGS)
@given(
    command=st.sampled_from(["shapes", "eval"]),
    option=st.sampled_from(["--batch", "--depth", "--batch-size", "--limit-test", "--max-params"]),
    value=NUMBERS,
)
def test_other_option_values(cli, command: str, option: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        args = [TINY] if command == "shapes" else [TINY, tmp]
        _allowed(cli(command, *args, option, value))


NAME = st.lists(
    st.sampled_from([*"ab.[]/ _-é\n\x1b\u202e:%", "[/bold]", "..", "日"]), min_size=1, max_size=8
).map("".join)
SITUATIONS = ["nothing", "foreign file", "archc file", "folder", "fifo", "symlink", "parent file"]


def _make(path: Path, situation: str) -> None:
    if situation == "parent file":
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        path.parent.write_text("a file")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if situation == "foreign file":
        path.write_text("mine\n")
    elif situation == "archc file":
        path.write_text(Path("tests/golden/tiny_cnn.py").read_text())
    elif situation == "folder":
        path.mkdir()
    elif situation == "fifo":
        os.mkfifo(path)
    elif situation == "symlink":
        path.symlink_to(path.parent)


@settings(max_examples=40, **SETTINGS)
@given(name=NAME, situation=st.sampled_from(SITUATIONS), force=st.booleans())
def test_build_output_in_any_situation(cli, name: str, situation: str, force: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        output = f"{tmp}/d/{name}"
        path = Path(output)
        made = False
        if not name.endswith("/") and os.path.basename(name) not in ("", ".", ".."):
            try:
                _make(path, situation)
                made = situation != "nothing"
            except OSError:
                made = False
        before = os.lstat(path) if made and os.path.lexists(path) else None
        before_text = path.read_bytes() if before and stat.S_ISREG(before.st_mode) else None
        result = cli("build", TINY, "-o", output, *(["--force"] if force else []))
        _allowed(result)
        if before is not None and not stat.S_ISREG(before.st_mode):
            after = os.lstat(path)  # never replaced, even with --force
            assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
        if situation == "foreign file" and before_text is not None and not force:
            assert path.read_bytes() == before_text
