"""Located YAML reading: marks, duplicate keys, unsafe tags, limits."""

from __future__ import annotations

import pytest

from archcompile.errors import LimitError, SpecError
from archcompile.limits import Limits
from archcompile.spec.source import format_path, parse_yaml


def test_values_and_marks() -> None:
    value, smap = parse_yaml("a: 1\nb:\n  - conv: {out: 3}\n  - flatten\n", "x.yaml")
    assert value == {"a": 1, "b": [{"conv": {"out": 3}}, "flatten"]}
    mark = smap.value(("b", 0, "conv", "out"))
    assert (mark.file, mark.line, mark.column) == ("x.yaml", 3, 17)
    assert smap.key(("b",)).line == 2
    # an unknown deeper path falls back to its nearest located parent
    assert smap.value(("b", 1, "nothing")).line == 4


def test_format_path() -> None:
    assert format_path(("blocks", "block3", 1, "inception")) == "blocks.block3[1].inception"
    assert format_path(()) == ""


def test_duplicate_key_names_both_lines() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("blocks:\n  a: [relu]\n  b: [relu]\n  a: [flatten]\n", "x.yaml")
    d = info.value.first
    assert (d.line, d.column) == (4, 3)
    assert "first defined on line 2, again on line 4" in d.message


@pytest.mark.parametrize(
    "text",
    [
        '!!python/object/apply:os.system ["echo pwned"]',
        "a: !!python/name:os.system ''",
        "a: !custom 3",
        "a: !!binary aGVsbG8=",
        "a: 2001-12-14",
    ],
)
def test_only_plain_data_tags(text: str) -> None:
    with pytest.raises(SpecError, match="is not allowed"):
        parse_yaml(text, "x.yaml")


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(LimitError, match="aliases"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_deep_nesting_is_refused_before_recursion() -> None:
    text = "[" * 10_000 + "]" * 10_000
    with pytest.raises(LimitError, match="nesting deeper than 64"):
        parse_yaml(text, "deep.yaml")


def test_event_limit() -> None:
    with pytest.raises(LimitError, match="YAML events"):
        parse_yaml("[" + ", ".join(["1"] * 50) + "]", "x.yaml", Limits(max_yaml_events=20))


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: [1,\n", "invalid YAML", 2),
        ("a:\n\t- b\n", "tab character", 2),
        ("", "the spec is empty", 1),
        ("# only a comment\n", "the spec is empty", 1),
        ("a: .inf\n", "not a finite number", 1),
        ("a: 1\n---\nb: 2\n", "more than one YAML document", 2),
        ("a: 1\x00", "NUL byte", 1),
        ("[1, 2]: x\n", "mapping keys must be plain names", 1),
        ("1: x\n", "is not a name", 1),
    ],
)
def test_bad_yaml_is_located(text: str, message: str, line: int) -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "x.yaml")
    assert message in info.value.first.message
    assert info.value.first.line == line
