"""The annotated tree is built once per command: shape rules run about once per
layer, not once per backend (GoogLeNet has 73 layers: 10 at the top level and
7 in each of 9 Inception blocks, whose class is inferred once symbolically)."""

from __future__ import annotations

import pytest

import archcompile
from archcompile.shapes import SHAPE_RULES
from archcompile.tree import structure

GOOGLENET = "specs/googlenet.yaml"


@pytest.fixture
def rule_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for kind, rule in list(SHAPE_RULES.items()):

        def counted(layer, shape, rule=rule, kind=kind):
            calls.append(kind)
            return rule(layer, shape)

        monkeypatch.setitem(SHAPE_RULES, kind, counted)
    return calls


@pytest.mark.parametrize(
    "args",
    [
        ["shapes", GOOGLENET],
        ["shapes", GOOGLENET, "--depth", "3", "--json"],
        ["build", GOOGLENET, "-o", "-"],
    ],
    ids=" ".join,
)
def test_commands_apply_each_shape_rule_about_once_per_layer(cli, rule_calls, args) -> None:
    assert cli(*args).code == 0
    assert 73 <= len(rule_calls) <= 90, len(rule_calls)


def test_diff_annotates_each_spec_once(cli, rule_calls) -> None:
    cli("diff", GOOGLENET, "specs/googlenet_bn.yaml")
    assert len(rule_calls) <= 2 * 90


def test_live_build_reads_the_same_tree(rule_calls) -> None:
    spec = archcompile.load_spec(GOOGLENET)
    archcompile.infer_shapes(spec)
    archcompile.build(spec)
    archcompile.generate_source(spec)
    assert len(rule_calls) <= 90


def test_structure_tells_classes_apart() -> None:
    spec = archcompile.load_spec("tests/specs/variants.yaml")
    calls = [n for n in spec.graph.blocks[0].body]
    keys = [structure(c.body) for c in calls[:4]]
    assert keys[0] != keys[1]  # repeat 2 and 3 times
    assert keys[2] != keys[3]  # relu and gelu
    google = archcompile.load_spec(GOOGLENET).graph.blocks[2].body
    assert structure(google[0].body) == structure(google[1].body)  # widths are arguments
