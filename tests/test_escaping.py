"""Messages that cannot be forged or crash: every user-supplied string goes
through errors.shown (controls escaped), the consoles never interpret rich
markup, and characters the stream cannot encode are escaped, not fatal."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import ROOT

from archcompile.errors import Diagnostic, shown

TINY = ROOT / "tests" / "specs" / "tiny_cnn.yaml"

#: hostile pieces of names, and what must not reach the terminal raw
HOSTILE = {
    "newline": "a\nerror: forged",
    "carriage return": "a\rforged",
    "ANSI colour": "a\x1b[31mred",
    "ANSI clear screen": "\x1b[2J\x1b[H",
    "bell": "\x07",
    "NUL-like C1 control": "\x85\x9b",
    "right-to-left override": "abc\u202eyp.exe",
    "zero-width joiner": "a\u200db",
    "line separator": "a\u2028b",
    "undecodable byte of a file name": "a\udcffb",
    "tab": "a\tb",
}
UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_shown_escapes_every_control_and_invisible_character(text: str) -> None:
    result = shown(text)
    assert not [ch for ch in result if unicodedata.category(ch) in UNSAFE], result
    assert result.isascii() or result.isprintable()
    line = Diagnostic("bad", file=text, path=text, hint=text, notes=(text,)).format()
    assert not [ch for ch in line if unicodedata.category(ch) in UNSAFE - {"Cc"} or ch in "\r\x1b"]
    assert len(line.splitlines()) == 3  # message, note, hint: no forged line


@pytest.mark.parametrize("text", ["plain", "café", "日本語", "[bold]x[/bold]", "a b", "100%"])
def test_shown_keeps_printable_text(text: str) -> None:
    assert shown(text) == text


def _archc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archcompile", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["out[/bold].py", "[draft]/net.py", "[red]x[/red].py", "a]b[.py"])
def test_rich_markup_in_an_output_path_prints_verbatim(cli, tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    result = cli("build", TINY, "-o", target)
    assert result.code == 0, result.err
    assert result.out.startswith(f"wrote {target} (")
    assert target.is_file()


@pytest.mark.parametrize("key", ["newline", "ANSI colour", "right-to-left override", "bell"])
def test_control_characters_in_file_names_are_shown_escaped(cli, tmp_path: Path, key: str) -> None:
    hostile = HOSTILE[key].replace("/", "_")
    target = tmp_path / f"x{hostile}.py"
    result = cli("build", TINY, "-o", target)
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 1
    assert shown(str(target)) in result.out
    assert "\x1b" not in result.out and "\u202e" not in result.out and "\x07" not in result.out
    spec = tmp_path / f"s{hostile}.yaml"
    spec.write_text("archc: 1\nname: [\n")
    failed = cli("shapes", spec)
    assert failed.code == 1
    assert failed.err.startswith(shown(spec.name) + ":")  # outside the cwd: its name
    assert len(failed.err.splitlines()) == 1, failed.err


def test_a_hostile_overrides_value_is_escaped(cli) -> None:
    result = cli("shapes", TINY, "--set", "nope\x1b[2J=1")
    assert result.code in (1, 2)
    assert "\x1b" not in result.err and "\\x1b" in result.err


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONIOENCODING": "ascii"},
        {"PYTHONIOENCODING": "latin-1"},
        {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
    ],
    ids=["ascii", "latin-1", "C locale"],
)
@pytest.mark.parametrize("command", ["shapes", "build", "broken"])
def test_a_stream_that_cannot_encode_gets_escapes_not_a_crash(
    tmp_path: Path, env: dict[str, str], command: str
) -> None:
    spec = tmp_path / "café_日本.yaml"
    text = TINY.read_text().replace("name: TinyCNN", "name: TinyCNN\ndescription: café 日本")
    if command == "broken":
        text += "\nbogus_key_é: 1\n"
    spec.write_text(text)
    args = {"shapes": ["shapes", spec.name], "build": ["build", spec.name, "-o", "-"]}
    result = _archc(*args.get(command, ["shapes", spec.name]), cwd=tmp_path, env=env)
    assert result.returncode == (1 if command == "broken" else 0), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    if command == "shapes":
        assert "caf" in result.stdout and "TinyCNN" in result.stdout
