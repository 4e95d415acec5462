"""Untrusted input (issue 4): the cases of the catalogue in ``tests/bad_specs/``
that need several files or generated content, resource attacks (refused with
bounded memory), YAML that tries to run code, and hostile text that reaches
generated source.

Every bad input gives exit code 1, a located first line and no traceback.
Speed is not asserted here: ``scripts/bench_attacks.py`` measures it.
"""

from __future__ import annotations

import ast
import os
import random
import tracemalloc
from pathlib import Path

import pytest
import torch
import yaml
from attacks import HEADER, REFUSED
from conftest import assert_ruff_accepts, import_source

import archcompile
from archcompile.backends.codegen import edited_by_hand
from archcompile.backends.pytext import comment_text
from archcompile.errors import LimitError, SpecError

MIB = 2**20
MEMORY_LIMIT = 50 * MIB  # peak Python allocations while refusing an attack


def _first_line(result) -> str:
    assert result.code == 1, (result.code, result.err, result.out)
    assert "Traceback" not in result.err + result.out
    assert result.err, "no message"
    return result.err.splitlines()[0]


def _peak(run) -> tuple[object, int]:
    """``run()``'s result and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture
def warm_cli(cli):
    """The CLI with its modules already imported, so that a memory peak
    measures the work on the input, not the imports."""
    cli("shapes", "tests/bad_specs/yaml_list.yaml")
    return cli


# -- not YAML, not a spec ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "1:1: error: the spec is empty"),
        (b"\n\n   \n", "1:1: error: the spec is empty"),
        (
            b"archc: 1\nname: Gr\xfc\xdfe\n",
            "2:9: error: not UTF-8 text: byte 0xfc cannot be decoded",
        ),
        (b"\xff\xfearchc: 1\n", "1:1: error: not UTF-8 text: byte 0xff cannot be decoded"),
        (b"archc: 1\x00\n", "1:9: error: binary data (NUL byte) in a spec"),
        (
            bytes(range(1, 32)),
            "1:1: error: invalid YAML: the character U+0001 is not allowed in YAML text",
        ),
    ],
    ids=["empty", "blank", "latin-1", "utf-16-bom", "nul", "controls"],
)
def test_unreadable_text_is_one_located_line(
    cli, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    assert _first_line(cli("shapes", path)) == f"bad.yaml:{expected}"


@pytest.mark.parametrize("seed", range(8))
def test_binary_garbage_is_one_located_line(cli, tmp_path: Path, seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    if seed % 2:  # valid UTF-8 garbage too: ASCII controls and symbols
        data = bytes(b % 128 for b in data)
    path = tmp_path / "garbage.yaml"
    path.write_bytes(data)
    line = _first_line(cli("shapes", path))
    location = line.split(": error: ")[0]
    assert location.startswith("garbage.yaml:") and location.count(":") == 2, line


def test_unreadable_spec(cli, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "locked.yaml"
    path.write_text(HEADER + "blocks:\n  b: [relu]\n")
    path.chmod(0)
    assert _first_line(cli("shapes", path)) == "locked.yaml: error: permission denied"


def test_a_long_scalar_document_is_not_echoed(cli, tmp_path: Path) -> None:
    path = tmp_path / "prose.yaml"
    path.write_text("lorem ipsum " * 10_000)
    line = _first_line(cli("shapes", path))
    assert line.startswith("prose.yaml:1:1: error: a spec is a mapping of keys")
    assert len(line) < 200


@pytest.mark.parametrize(
    "value",
    ["1" * 5000, "!!int abc", "!!python/object/apply:os.system [x]", "[" * 5000, "\x01", ""],
    ids=["digits", "bad-tag", "python-tag", "deep", "control", "empty"],
)
def test_set_values_are_parsed_as_safely_as_specs(cli, value: str) -> None:
    """``--set`` used to crash on values PyYAML could scan but not construct."""
    result = cli("shapes", "specs/googlenet.yaml", "--set", f"num_classes={value}")
    assert result.code in (1, 2) and "Traceback" not in result.err, result.err
    assert "internal error" not in result.err
    assert len(result.err.splitlines()[0]) < 200


# -- YAML that tries to run code ---------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        "!!python/object/apply:subprocess.check_call [[touch, {marker}]]",
        "!!python/object/new:subprocess.Popen [[touch, {marker}]]",
        "!!python/object/apply:builtins.exec [\"open('{marker}', 'w')\"]",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/object:os._wrap_close {{}}",
        "!python/object/apply:os.system [touch {marker}]",
    ],
)
@pytest.mark.parametrize("where", ["document", "value", "extended"])
def test_yaml_tags_never_run_code(cli, tmp_path: Path, payload: str, where: str) -> None:
    marker = tmp_path / "pwned"
    tagged = payload.format(marker=marker)
    spec = tmp_path / "spec.yaml"
    if where == "document":
        spec.write_text(tagged + "\n")
    elif where == "value":
        spec.write_text(HEADER + f"blocks:\n  b:\n    - conv: {tagged}\n")
    else:
        (tmp_path / "base.yaml").write_text(HEADER + f"description: {tagged}\n")
        spec.write_text("extends: base.yaml\nblocks:\n  b: [relu]\n")
    line = _first_line(cli("shapes", spec))
    assert "is not allowed" in line and "YAML tag '!" in line
    assert line.startswith("base.yaml:" if where == "extended" else "spec.yaml:")
    assert not marker.exists()


# -- files: extends, directories, devices ---------------------------------------------------


def test_extends_cycles_and_targets(cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    (tmp_path / "self.yaml").write_text("name: Me\nextends: self.yaml\n")
    (tmp_path / "lost.yaml").write_text("extends: nowhere.yaml\n")
    (tmp_path / "sub.yaml").mkdir()
    (tmp_path / "folder.yaml").write_text("extends: sub.yaml\n")
    (tmp_path / "number.yaml").write_text("extends: 3\n")
    cases = {
        "a.yaml": "b.yaml:1:10: error: extends cycle: a.yaml -> b.yaml -> a.yaml (at extends)",
        "self.yaml": "self.yaml:2:10: error: extends cycle: self.yaml -> self.yaml (at extends)",
        "lost.yaml": "lost.yaml:1:10: error: extends target 'nowhere.yaml' not found (at extends)",
        "folder.yaml": (
            "folder.yaml:1:10: error: extends target 'sub.yaml' is a directory, not a spec file "
            "(at extends)"
        ),
        "number.yaml": "number.yaml:1:10: error: extends must name a spec file (at extends)",
    }
    for name, expected in cases.items():
        result = cli("shapes", tmp_path / name)
        assert _first_line(result) == expected
        assert len(result.err.splitlines()) == 1, result.err


def test_extends_chain_limit(cli, tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"s{i}.yaml").write_text(f"extends: s{i + 1}.yaml\n")
    (tmp_path / "s20.yaml").write_text(HEADER + "blocks:\n  b: [relu]\n")
    line = _first_line(cli("shapes", tmp_path / "s0.yaml"))
    assert line.endswith("error: more than 16 levels of extends (at extends)")


def test_extends_with_thousands_of_keys_merges_with_their_marks(tmp_path: Path) -> None:
    """Merging the source maps of an extended spec used to take quadratic time."""
    (tmp_path / "base.yaml").write_text(HEADER + "params: {width: 8}\nblocks:\n  b: [relu]\n")
    params = "".join(f"  p{i}: {i}\n" for i in range(3000))
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nparams:\n" + params + "  bad: [1]\n")
    with pytest.raises(SpecError) as info:
        archcompile.load_spec(tmp_path / "child.yaml")
    first = info.value.first
    assert (first.file, first.line, first.path) == ("child.yaml", 3003, "params.bad")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_extends_a_device_is_refused_without_reading_it(warm_cli, tmp_path: Path) -> None:
    """``extends: /dev/zero`` used to read until memory ran out."""
    (tmp_path / "zero.yaml").write_text("extends: /dev/zero\n")
    result, peak = _peak(lambda: warm_cli("shapes", tmp_path / "zero.yaml"))
    assert _first_line(result) == (
        "zero.yaml:1:10: error: extends target '/dev/zero' is not a .yaml file (at extends)"
    )
    assert peak < MEMORY_LIMIT


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_spec_file_is_read_up_to_the_limit_only(tmp_path: Path) -> None:
    from archcompile.spec.source import read_text

    def read() -> LimitError | None:
        try:
            read_text(Path("/dev/zero"), "zero")
        except LimitError as exc:
            return exc
        return None

    error, peak = _peak(read)
    assert error is not None
    assert error.first.message == "spec is more than 1,048,576 bytes; the limit is 1,048,576"
    assert peak < 4 * MIB


# -- resource attacks ---------------------------------------------------------------------------


@pytest.mark.parametrize("attack", list(REFUSED))
def test_resource_attacks_are_refused_in_bounded_memory(
    warm_cli, tmp_path: Path, attack: str
) -> None:
    text, message = REFUSED[attack]
    path = tmp_path / "attack.yaml"
    path.write_text(text)
    result, peak = _peak(lambda: warm_cli("shapes", path))
    line = _first_line(result)
    assert line.startswith("attack.yaml:") and line.endswith(message), line
    assert peak < MEMORY_LIMIT, f"{peak / MIB:.1f} MiB"


def test_a_50_mb_spec_is_refused_by_its_size(warm_cli, tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:  # sparse: the size is what counts
        handle.truncate(50 * MIB)
    result, peak = _peak(lambda: warm_cli("shapes", path))
    assert (
        _first_line(result) == "huge.yaml: error: spec is 52,428,800 bytes; the limit is 1,048,576"
    )
    assert peak < MEMORY_LIMIT


def test_many_errors_are_all_reported_once(warm_cli, tmp_path: Path) -> None:
    """Thousands of mistakes: de-duplicating them used to take quadratic time."""
    path = tmp_path / "typos.yaml"
    path.write_text(HEADER + "blocks:\n  b:\n" + "".join(f"    - maxpol{i}\n" for i in range(1000)))
    result = warm_cli("shapes", path)
    assert _first_line(result).startswith("typos.yaml:6:7: error: unknown layer kind 'maxpol0'")
    # all are found; the command line shows the first 50 and counts the rest
    assert result.err.count("error: unknown layer kind") == 50
    assert result.err.rstrip().endswith("archc: 950 more errors not shown")
    with pytest.raises(SpecError) as info:
        archcompile.load_spec(path)
    assert len(info.value.diagnostics) == 1000


def test_values_are_counted_before_the_document_is_composed() -> None:
    """A document with more values than the limit is refused while it is
    scanned, before PyYAML builds its node tree."""
    from archcompile.limits import Limits
    from archcompile.spec.source import parse_yaml

    text = "[" + ", ".join(["1"] * 500) + "]"
    with pytest.raises(LimitError) as info:
        parse_yaml(text, "x.yaml", Limits(max_nodes=100))
    assert info.value.first.format() == "x.yaml:1:299: error: more than 100 values"


# -- YAML that the parser chokes on --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!int abc", "'abc' is not a valid integer"),
        ("!!int", "'' is not a valid integer"),
        ("!!float x", "'x' is not a valid number"),
        ("!!bool maybe", "'maybe' is not a valid boolean"),
        ("!!str [1]", "YAML tag '!!str' does not fit this value"),
        ("!!seq 3", "YAML tag '!!seq' does not fit this value"),
        ("1" * 5000, "is not a valid integer"),
        ("1" * 400 + ".5", "is not a finite number"),
        ("&x [*x]", "a YAML alias refers to a collection that contains it"),
    ],
)
def test_values_python_cannot_construct_are_located_errors(value: str, message: str) -> None:
    """These used to escape as ValueError, KeyError, IndexError or RecursionError."""
    with pytest.raises(SpecError) as info:
        archcompile.load_spec_text(
            HEADER + f"description: {value}\nblocks:\n  b: [relu]\n", "x.yaml"
        )
    diagnostic = info.value.first
    assert message in diagnostic.message
    assert (diagnostic.file, diagnostic.line) == ("x.yaml", 4)
    assert len(diagnostic.message) < 150  # the value is not echoed in full


# -- hostile text in generated source ------------------------------------------------------------

HOSTILE_TEXTS = [
    "two\nlines",
    'closes the docstring """ early',
    '"""; import os; os.system("x"); """',
    "''' single quotes '''",
    "back\\slash \\n not a newline",
    "trailing backslash\\",
    "carriage\rreturn",
    "crlf\r\nline",
    "line\u2028separator and paragraph\u2029separator",
    "vertical\x0btab form\x0cfeed next\x85line",
    "# not a comment\nimport os; os.system('x')",
    '\\"""',
    '"',
    "\\",
    "{{ jinja }} {% if x %}",
    "unicode é 漢字 \U0001f600 \u202e right-to-left \ufeff",
    "separators\x1c\x1d\x1e\x1f",
    "tab\there",
    "\n\n",
    "x" * 150 + " a very long word",
]
HOSTILE_NAMES = [
    "new\nline.yaml",
    'double"quote.yaml',
    "single'quote.yaml",
    'triple""".yaml',
    "back\\slash.yaml",
    "carriage\rreturn.yaml",
    "line\u2028separator.yaml",
    "paragraph\u2029separator.yaml",
    "vertical\x0btab.yaml",
    "form\x0cfeed.yaml",
    "next\x85line.yaml",
    "hash # import os.yaml",
    "trailing backslash\\",
]


def _spec_text(text: str) -> str:
    document = {
        "archc": 1,
        "name": "Net",
        "description": text,
        "input": [3, 8, 8],
        "params": {"label": text, "width": 4},
        "define": {
            "unit": {
                "doc": text,
                "params": ["c"],
                "layers": [{"conv": {"out": "$c", "kernel": 1}}],
            }
        },
        "blocks": {"b": [{"unit": ["$width"]}, {"add": {"main": ["relu"], "skip": []}}]},
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def _write_spec(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    try:
        path.write_text(_spec_text(text), encoding="utf-8")
    except (OSError, ValueError):
        pytest.skip(f"the file system refuses the name {name!r}")
    return path


def _check_structure(source: str, text: str) -> ast.Module:
    """Exactly the expected statements, and the text only inside strings."""
    tree = ast.parse(source)
    body = tree.body
    assert [type(node).__name__ for node in body] == [
        "Expr",
        "ImportFrom",
        "ClassDef",
        "ClassDef",
        "ClassDef",
    ]
    assert isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)
    assert ast.unparse(body[1]) == "from torch import Tensor, nn"
    assert [node.name for node in body[2:]] == ["Add", "Unit", "Net"]
    for cls in body[2:]:
        assert [type(s).__name__ for s in cls.body] == ["Expr", "FunctionDef", "FunctionDef"]
        assert [s.name for s in cls.body[1:]] == ["__init__", "forward"]
    unit, net = body[3], body[4]
    words = text.split()
    if words:  # the docstrings hold every word of the text, nothing more or less
        assert ast.get_docstring(unit, clean=False).split() == words
        assert ast.get_docstring(net, clean=False).split()[: len(words)] == words
        assert ast.get_docstring(net, clean=False).split()[len(words)] == "Input:"
    else:
        assert ast.get_docstring(unit) == "The 'unit' block of the spec."
    init = net.body[1]
    defaults = dict(zip([a.arg for a in init.args.args[1:]], init.args.defaults))
    assert ast.literal_eval(defaults["label"]) == text  # the string parameter, exactly
    return tree


_import = import_source  # write generated source and import it


@pytest.mark.parametrize("index", range(len(HOSTILE_TEXTS)))
def test_hostile_text_stays_inside_strings(tmp_path: Path, index: int) -> None:
    text = HOSTILE_TEXTS[index]
    spec = archcompile.load_spec(_write_spec(tmp_path, "spec.yaml", text))
    source = archcompile.generate_source(spec)
    _check_structure(source, text)
    assert edited_by_hand(source) is False  # the header is intact
    module = _import(source, tmp_path, f"hostile_{index}")
    model = module.Net()
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_names_stay_inside_the_header_comment(tmp_path: Path, name: str) -> None:
    spec = archcompile.load_spec(_write_spec(tmp_path, name, "plain"))
    assert spec.display == name
    source = archcompile.generate_source(spec)
    lines = source.split("\n")
    assert (
        lines[0]
        == f"# Generated by archc from {comment_text(name)}. Do not edit: change the spec and run"
    )
    assert all(line.startswith("#") for line in lines[:4])
    assert edited_by_hand(source) is False
    _check_structure(source, "plain")


def test_generated_sources_with_hostile_text_pass_ruff(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    out.mkdir()
    for index, text in enumerate(HOSTILE_TEXTS):
        directory = tmp_path / f"t{index}"
        directory.mkdir()
        spec = archcompile.load_spec(
            _write_spec(directory, HOSTILE_NAMES[index % len(HOSTILE_NAMES)], text)
        )
        (out / f"hostile_{index}.py").write_text(
            archcompile.generate_source(spec), encoding="utf-8"
        )
    assert_ruff_accepts(out)
