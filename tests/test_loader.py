"""Loading specs: extends, overrides, validation messages, naming rules."""

from __future__ import annotations

from pathlib import Path

import pytest

import archcompile
from archcompile.errors import SpecError, UsageError

HEADER = "archc: 1\nname: Net\ninput: [3, 8, 8]\n"


def _errors(text: str) -> list:
    with pytest.raises(SpecError) as info:
        archcompile.load_spec_text(text, "x.yaml")
    return info.value.diagnostics


def test_googlenet_bn_is_googlenet_plus_a_default() -> None:
    plain = archcompile.load_spec("specs/googlenet.yaml")
    bn = archcompile.load_spec("specs/googlenet_bn.yaml")
    expected = dict(plain.document, defaults={"conv": {"activation": "relu", "norm": "batch"}})
    assert bn.document == expected
    assert bn.sha256 != plain.sha256


def test_errors_in_a_base_file_point_into_it(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(HEADER + "blocks:\n  b:\n    - conv: {out: 0, kernel: 1}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: Child\n")
    with pytest.raises(SpecError) as info:
        archcompile.load_spec(tmp_path / "child.yaml")
    d = info.value.first
    assert (d.file, d.line, d.path) == ("base.yaml", 6, "blocks.b[0].conv.out")
    assert "at least 1, got 0" in d.message


def test_child_overrides_win_and_mappings_merge(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        HEADER + "params: {a: 1, b: 2}\nblocks:\n  b: [relu]\n  c: [flatten]\n"
    )
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\nparams: {b: 3}\nblocks:\n  b: [gelu]\n  d: [tanh]\n"
    )
    spec = archcompile.load_spec(tmp_path / "child.yaml")
    assert spec.document["params"] == {"a": 1, "b": 3}
    assert [b.name for b in spec.graph.blocks] == ["b", "c", "d"]
    assert spec.graph.blocks[0].body[0].op.kind == "gelu"


def test_extends_cycle_and_missing_target(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(SpecError, match=r"extends cycle: a.yaml -> b.yaml -> a.yaml"):
        archcompile.load_spec(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(SpecError) as info:
        archcompile.load_spec(tmp_path / "c.yaml")
    assert (
        info.value.first.format()
        == "c.yaml:1:10: error: extends target 'nowhere.yaml' not found (at extends)"
    )


def test_overrides() -> None:
    spec = archcompile.load_spec("specs/googlenet.yaml", {"num_classes": "100"})
    assert spec.graph.params == {"num_classes": 100}
    assert spec.sha256 != archcompile.load_spec("specs/googlenet.yaml").sha256
    with pytest.raises(UsageError) as info:
        archcompile.load_spec("specs/googlenet.yaml", {"num_clases": "3"})
    assert info.value.first.hint == "did you mean 'num_classes'?"


def test_all_errors_of_a_file_at_once() -> None:
    diagnostics = _errors(
        HEADER
        + "blocks:\n  b:\n    - conv: {out: -1, kernel: 3}\n    - maxpol: {kernel: 2}\n"
        + "    - linear: {out: $n}\n"
    )
    assert [(d.line, d.path) for d in diagnostics] == [
        (6, "blocks.b[0].conv.out"),
        (7, "blocks.b[1].maxpol"),
        (8, "blocks.b[2].linear.out"),
    ]


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            "archc: 1\nname: N\ninput: [3, 8, 8]\nblock:\n  b: [relu]\n",
            "unknown key 'block'",
            "did you mean 'blocks'?",
        ),
        ("archc: 1\nname: N\nblocks:\n  b: [relu]\n", "missing required key 'input'", None),
        (
            "archc: 2\nname: N\ninput: [3, 8, 8]\nblocks:\n  b: [relu]\n",
            "2 is not allowed here; expected 1",
            None,
        ),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: 8, kernal: 3}\n",
            "conv has no argument 'kernal'",
            "did you mean 'kernel'?",
        ),
        (HEADER + "blocks:\n  b:\n    - conv: {out: 8}\n", "missing required key 'kernel'", None),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: 64.5, kernel: 3}\n",
            "a channel count must be an integer, got a float 64.5",
            None,
        ),
        (
            HEADER + 'blocks:\n  b:\n    - conv: {out: "64", kernel: 3}\n',
            "a channel count must be an integer, got a string '64'",
            None,
        ),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: true, kernel: 3}\n",
            "a channel count must be an integer, got a boolean true",
            None,
        ),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: 8, kernel: 3, activation: rleu}\n",
            "'rleu' is not allowed here",
            None,
        ),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: 8, kernel: 3, stride: 2, padding: same}\n",
            "padding 'same' needs stride 1",
            None,
        ),
        (
            HEADER + "blocks:\n  b:\n    - maxpool: {kernel: 3, padding: 2}\n",
            "pool padding 2 is more than half the kernel 3",
            None,
        ),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: 9, kernel: 1, groups: 2}\n",
            "groups (2) must divide the output channels (9)",
            None,
        ),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: 3000000000, kernel: 1}\n",
            "must be at most 2**31 - 1",
            None,
        ),
        (HEADER + "blocks:\n  b:\n    - dropout: {p: 1.5}\n", "p must be in [0.0, 1.0)", None),
        (
            HEADER + "blocks:\n  b:\n    - conv: {out: 8, kernel: 3}\n      relu: {}\n",
            "a layer is a mapping with one key, its kind",
            None,
        ),
        (HEADER + "blocks:\n  b: []\n", "block 'b' has no layers", None),
        (
            HEADER + "blocks:\n  forward: [relu]\n",
            "would shadow the torch.nn.Module attribute",
            None,
        ),
        (HEADER + "blocks:\n  class: [relu]\n", "is a Python keyword", None),
        (
            HEADER + "params: {nn: 3}\nblocks:\n  b: [relu]\n",
            "is used by the generated code itself",
            None,
        ),
        (
            "archc: 1\nname: Inception\ninput: [3, 8, 8]\nblocks:\n  b: [{inception: [1, [1, 1], [1, 1], 1]}]\n",
            "clashes with the class generated for block 'inception'",
            None,
        ),
        (
            HEADER + "define:\n  a:\n    layers: [b]\n  b:\n    layers: [a]\nblocks:\n  y: [a]\n",
            "block 'a' uses itself: a -> b -> a",
            None,
        ),
        (
            HEADER
            + "blocks:\n  b:\n    - add: {main: [relu], main2: [{conv: {out: 4, kernel: 1}}]}\n",
            None,
            None,
        ),
    ],
)
def test_validation_messages(text: str, message: str | None, hint: str | None) -> None:
    if message is None:  # a shape error, reported by inference rather than loading
        spec = archcompile.load_spec_text(text, "x.yaml")
        with pytest.raises(SpecError, match="add branches differ"):
            archcompile.infer_shapes(spec)
        return
    diagnostics = _errors(text)
    found = [d for d in diagnostics if message in d.message]
    assert found, "\n".join(d.format() for d in diagnostics)
    assert found[0].file == "x.yaml" and found[0].line is not None
    if hint:
        assert found[0].hint == hint


def test_value_from_a_call_argument_points_at_the_call() -> None:
    diagnostics = _errors(
        HEADER + "blocks:\n  b:\n    - inception: [64, [96, -128], [16, 32], 32]\n"
    )
    d = diagnostics[0]
    assert (d.line, d.column, d.path) == (6, 28, "blocks.b[0].inception[1][1]")
    assert "at least 1, got -128" in d.message
    assert "$c2 is used as 'out' of conv" in d.notes[0]


def test_a_spec_may_shadow_the_standard_library() -> None:
    spec = archcompile.load_spec_text(
        HEADER
        + "define:\n  inception:\n    params: [c]\n    layers: [{conv: {out: $c, kernel: 1}}]\n"
        "blocks:\n  b: [{inception: [5]}]\n"
    )
    assert archcompile.infer_shapes(spec).block("b").shape == (5, 8, 8)


def test_keyword_call_form() -> None:
    spec = archcompile.load_spec_text(
        HEADER + "blocks:\n  b:\n    - inception: {c1: 8, c2: [4, 8], c3: [2, 4], c4: 4}\n"
    )
    assert archcompile.infer_shapes(spec).block("b").shape == (24, 8, 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEADER + "define:\n  relu:\n    layers: [gelu]\nblocks:\n  b: [relu]\n",
            "block definition name 'relu' is a layer kind",
        ),
        (
            HEADER
            + "define:\n  d:\n    params: [H]\n    layers: [relu]\nblocks:\n  b: [{d: [1]}]\n",
            "parameter name 'H' is used by the generated code",
        ),
        (
            HEADER
            + "define:\n  d:\n    params: [in_features]\n    layers: [relu]\nblocks:\n  b: [{d: [1]}]\n",
            "'in_features' is used by the generated code",
        ),
        (
            HEADER
            + "define:\n  d:\n    params: [a, a]\n    layers: [relu]\nblocks:\n  b: [{d: [1, 2]}]\n",
            "parameter 'a' is named twice",
        ),
        (
            "archc: 1\nname: N\ninput: [3, 8]\nblocks:\n  b: [relu]\n",
            "input must be [channels, height, width], got [3, 8]",
        ),
        (
            "archc: 1\nname: N\ndescription: [1]\ninput: [3, 8, 8]\nblocks:\n  b: [relu]\n",
            "must be text, got [1]",
        ),
        (HEADER + "blocks:\n  _hidden: [relu]\n", "starts with '_'"),
        (
            HEADER + "define:\n  d:\n    layers:\n      - add: {main: [relu], skip: []}\n"
            "      - add: {main: [gelu], skip2: []}\nblocks:\n  b: [d]\n",
            "name 'main' is used twice in block 'd'",
        ),
    ],
)
def test_naming_rules(text: str, message: str) -> None:
    diagnostics = _errors(text)
    assert any(message in d.message for d in diagnostics), "\n".join(
        d.format() for d in diagnostics
    )
    assert all("{" not in d.message for d in diagnostics)  # no unformatted placeholders
