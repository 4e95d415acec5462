"""The docs say what the code does: every shell command in README.md and docs/
runs as written and prints what is shown, and every whole spec shown in YAML
loads.

Shell blocks (```sh, ```bash, ```console) run in a scratch copy of the
repository's specs, one copy per doc file, blocks in document order (a later
block may use what an earlier one wrote). In ```console blocks the lines after
a ``$ `` command are its expected output; an ```sh block's expected output is
the ```text block right after it. Expected lines must appear in the real output
in order, whitespace normalized and figures in e-notation (measured
differences) not compared; a ``...`` line elides any number of lines.

A block that cannot run here says why in its fence info string, e.g.
```sh {skip: trains for 25 minutes}; a block with a command other than
``archc`` or ``python`` and no such reason fails. Training commands are
shortened (``--max-steps 2 --limit-train 64 --limit-test 32``, more training
images for a larger ``--batch-size``) and, with
everything else that trains, exports or imports weights, marked slow.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from archcompile import ArchcError, load_spec_text

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "console"}
RUNNABLE = {"archc", "python"}
SLOW_SUBCOMMANDS = {"train", "eval", "export", "import-weights"}
COPIED = ["specs", "tests/specs", "tests/bad_specs", "schema"]
SHORTEN_TRAIN = ["--max-steps", "2", "--limit-test", "32", "--limit-train"]
DROPPED_TRAIN_OPTIONS = {"--epochs", "--max-steps", "--limit-train", "--limit-test"}
FENCE = re.compile(r"^```(\w*)\s*(?:\{\s*(\w+)\s*:\s*(.*?)\s*\})?\s*$")
COMMAND_TIMEOUT_S = 300


@dataclass
class Block:
    doc: Path
    line: int
    lang: str
    body: list[str]
    skip: str | None = None
    continues: bool = False
    text_after: list[str] | None = None

    @property
    def place(self) -> str:
        return f"{self.doc.relative_to(ROOT).as_posix()}:{self.line}"


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


def read_blocks(doc: Path) -> list[Block]:
    """Every fenced block of ``doc``, each with the ```text block after it."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not lines[i].startswith("```") or lines[i] == "```":
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        lang, key, value = match.groups()
        skip = value if key == "skip" else None
        block = Block(doc, i + 1, lang, lines[i + 1 : end], skip, continues=key == "continues")
        blocks.append(block)
        i = end + 1
    attach_text_blocks(blocks)
    return blocks


def attach_text_blocks(blocks: list[Block]) -> None:
    for block, following in itertools.pairwise(blocks):
        if block.lang in {"sh", "bash"} and following.lang == "text":
            gap = following.line - (block.line + len(block.body) + 1)
            if gap <= 2:
                block.text_after = following.body


ALL_BLOCKS = [block for doc in DOCS for block in read_blocks(doc)]
SHELL_BLOCKS = [b for b in ALL_BLOCKS if b.lang in SHELL_LANGS]


def is_whole_spec(block: Block) -> bool:
    keys = {ln.split(":")[0] for ln in block.body if re.match(r"^\w+:", ln)}
    return block.lang == "yaml" and {"archc", "blocks"} <= keys and "..." not in block.body


SPEC_BLOCKS = [b for b in ALL_BLOCKS if is_whole_spec(b)]


def join_continuations(lines: list[str]) -> list[str]:
    joined: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            joined.append(pending + line)
            pending = ""
    return joined


def parse_commands(block: Block) -> list[Command]:
    """The block's commands, each with the output the doc shows for it."""
    lines = join_continuations(block.body)
    if block.lang == "console":
        return parse_console(lines)
    commands = [Command(ln.strip()) for ln in lines if ln.strip() and not ln.startswith("#")]
    return commands


def parse_console(lines: list[str]) -> list[Command]:
    commands: list[Command] = []
    for line in lines:
        if line.startswith("$ "):
            commands.append(Command(line[2:].strip()))
        elif commands:
            commands[-1].expected.append(line)
    return commands


def words_of(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def unrunnable(block: Block) -> list[str]:
    return [c.line for c in parse_commands(block) if (words_of(c.line) or [""])[0] not in RUNNABLE]


def is_slow(block: Block) -> bool:
    for command in parse_commands(block):
        words = words_of(command.line)
        if words[:1] == ["archc"] and len(words) > 1 and words[1] in SLOW_SUBCOMMANDS:
            return True
    return False


def shell_params() -> list[object]:
    params = []
    for block in SHELL_BLOCKS:
        marks = [pytest.mark.slow] if block.skip is None and is_slow(block) else []
        params.append(pytest.param(block, id=block.place, marks=marks))
    return params


def shorten(command: str) -> str:
    """A training command cut to two steps; an eval command to 32 test images."""
    words = words_of(command)
    if words[:2] == ["archc", "train"]:
        kept = drop_options(words, DROPPED_TRAIN_OPTIONS)
        return shlex.join([*kept, *SHORTEN_TRAIN, str(train_images_for(words))])
    if words[:2] == ["archc", "eval"] and "--limit-test" not in words:
        return shlex.join(words + ["--limit-test", "32"])
    return command


def train_images_for(words: list[str]) -> int:
    """Enough training images for one batch: 64, or two batches of --batch-size."""
    if "--batch-size" in words:
        return max(64, 2 * int(words[words.index("--batch-size") + 1]))
    return 64


def drop_options(words: list[str], options: set[str]) -> list[str]:
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in options:
            skip_next = True
        else:
            kept.append(word)
    return kept


def expected_exit(command: Command) -> int:
    """2 where the doc shows a command-line error, 1 a spec or file error or a
    diff, else 0."""
    shown = [ln.strip() for ln in command.expected]
    if any(re.match(r"^archc( [\w-]+)?: error:", ln) for ln in shown):
        return 2
    if any(": error:" in ln or ln.startswith("archc: error") for ln in shown):
        return 1
    if command.line.startswith("archc diff") and any(ln.startswith("--- ") for ln in shown):
        return 1
    return 0


MEASURED = re.compile(r"\b\d\.\d+e[-+]\d+\b")


def normalize(line: str) -> str:
    """Whitespace collapsed; a measured figure in e-notation (a max abs
    difference of a random batch) stands for any such figure."""
    return MEASURED.sub("<measured>", " ".join(line.split()))


def chunks_of(expected: list[str]) -> list[list[str]]:
    """The shown output cut at ``...`` lines, blank lines dropped."""
    chunks: list[list[str]] = [[]]
    for line in map(normalize, expected):
        if line == "...":
            chunks.append([])
        elif line:
            chunks[-1].append(line)
    return [chunk for chunk in chunks if chunk]


def assert_shows(expected: list[str], output: str, where: str) -> None:
    actual = [normalize(ln) for ln in output.splitlines() if ln.strip()]
    start = 0
    for chunk in chunks_of(expected):
        found = find_chunk(actual, chunk, start)
        assert found is not None, (
            f"{where}: the doc shows\n  " + "\n  ".join(chunk) + "\nbut the command printed\n"
            f"{output}"
        )
        start = found + len(chunk)


def find_chunk(actual: list[str], chunk: list[str], start: int) -> int | None:
    for i in range(start, len(actual) - len(chunk) + 1):
        if actual[i : i + len(chunk)] == chunk:
            return i
    return None


@pytest.fixture(scope="session")
def workspaces() -> dict[Path, Path]:
    """The scratch folder of the last block run, per doc file."""
    return {}


def workspace_for(block: Block, workspaces: dict[Path, Path], base: Path) -> Path:
    """A fresh copy of the specs, or, for a block marked ``{continues: ...}``,
    the folder of the block before it."""
    if block.continues:
        assert block.doc in workspaces, f"{block.place}: the block it continues did not run"
        return workspaces[block.doc]
    where = base / block.place.replace("/", "_").replace(":", "_")
    for name in COPIED:
        shutil.copytree(ROOT / name, where / name)
    write_shims(where / ".bin")
    workspaces[block.doc] = where
    return where


def write_shims(bin_dir: Path) -> None:
    """``archc`` and ``python`` on PATH run this checkout with this interpreter."""
    bin_dir.mkdir(parents=True)
    shims = {"archc": f'exec "{sys.executable}" -m archcompile "$@"\n'}
    shims["python"] = f'exec "{sys.executable}" "$@"\n'
    for name, body in shims.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = f"{cwd / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("block", shell_params())
def test_shell_block_runs_as_documented(
    block: Block, workspaces: dict[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    if block.skip is not None:
        pytest.skip(f"{block.place}: {block.skip}")
    others = unrunnable(block)
    assert not others, f"{block.place}: runs {others}; mark the block {{skip: why}}"
    cwd = workspace_for(block, workspaces, tmp_path_factory.getbasetemp() / "docs")
    printed = ""
    for command in parse_commands(block):
        result = run_shell(shorten(command.line), cwd)
        where = f"{block.place}: $ {command.line}"
        assert result.returncode == expected_exit(command), f"{where}\n{result.stdout}"
        assert_shows(command.expected, result.stdout, where)
        printed += result.stdout
    if block.text_after is not None:
        assert_shows(block.text_after, printed, f"{block.place} (the text block after it)")


@pytest.mark.parametrize("block", [pytest.param(b, id=b.place) for b in SPEC_BLOCKS])
def test_yaml_spec_block_loads(block: Block) -> None:
    text = "\n".join(block.body) + "\n"
    if block.skip is not None and block.skip.startswith("error"):
        with pytest.raises(ArchcError):
            load_spec_text(text, base_dir=ROOT)
        return
    if block.skip is not None:
        pytest.skip(f"{block.place}: {block.skip}")
    load_spec_text(text, base_dir=ROOT)


def synopsis(doc: Path, command: str) -> str:
    """The ```text block of ``doc`` that starts with ``archc COMMAND``."""
    for block in read_blocks(doc):
        if block.lang == "text" and block.body and block.body[0].startswith(f"archc {command} "):
            return "\n".join(block.body)
    raise AssertionError(f"{doc.name} has no synopsis of archc {command}")


@pytest.mark.parametrize("command", ["train", "eval"])
def test_training_synopsis_lists_every_option(command: str) -> None:
    import typer

    from archcompile.cli import app

    group = typer.main.get_command(app)
    options = [
        opt
        for param in group.commands[command].params  # type: ignore[attr-defined]
        if param.param_type_name == "option"
        for opt in param.opts
        if opt.startswith("--") and opt != "--help"
    ]
    text = synopsis(ROOT / "docs" / "training.md", command)
    missing = [opt for opt in options if not re.search(re.escape(opt) + r"\b", text)]
    assert not missing, f"docs/training.md's archc {command} synopsis omits {missing}"
