"""Every layer kind is declared once and present in every table keyed by kind.

Adding a kind to ``archcompile/layers.py`` without its shape rule, count
rule, builder, source arguments, template, documentation or a use in the test
specs fails here, naming what is missing.
"""

from __future__ import annotations

import re
from typing import get_args

import pytest
from conftest import ALL_SPECS, ROOT

import archcompile
from archcompile.layers import LAYER_KINDS, Activation, LayerSpec
from archcompile.lowering import ACTIVATIONS, LOWERING
from archcompile.shapes import COUNT_RULES, SHAPE_RULES

KINDS = sorted(LAYER_KINDS)


def _kinds_used_in_specs() -> set[str]:
    used = set()
    for path in ALL_SPECS:
        spec = archcompile.load_spec(path)
        stack = [n for b in spec.graph.blocks for n in b.body]
        while stack:
            node = stack.pop()
            if node.node == "layer":
                used.add(node.op.kind)
            elif node.node == "call":
                stack += node.body
            elif node.node != "join":
                stack += [n for branch in node.branches.values() for n in branch]
    return used


@pytest.mark.parametrize("kind", KINDS)
def test_kind_is_in_every_table(kind: str) -> None:
    missing = [
        name
        for name, table in [
            ("SHAPE_RULES (shapes.py)", SHAPE_RULES),
            ("COUNT_RULES (shapes.py)", COUNT_RULES),
            ("LOWERING (lowering.py)", LOWERING),
        ]
        if kind not in table
    ]
    docs = (ROOT / "docs" / "spec-language.md").read_text()
    if not re.search(rf"^#+ `{kind}`", docs, re.MULTILINE):
        missing.append(f"a '### `{kind}`' section in docs/spec-language.md")
    assert not missing, f"layer kind {kind!r} lacks: " + ", ".join(missing)


def test_tables_have_no_stale_kinds() -> None:
    for table in (SHAPE_RULES, COUNT_RULES, LOWERING):
        assert set(table) == set(LAYER_KINDS)


def test_every_activation_is_lowered_once() -> None:
    """``activation:`` of conv and linear takes exactly the kinds the lowering maps."""
    assert set(ACTIVATIONS) == set(get_args(Activation))
    assert set(ACTIVATIONS) <= set(LAYER_KINDS)


def test_one_table_per_concern() -> None:
    """No backend keeps a table keyed by layer kind of its own: kinds appear in
    the shape, count and lowering tables and nowhere else in the backends."""
    for path in (ROOT / "archcompile" / "backends").glob("*.py"):
        text = path.read_text()
        for kind in ("maxpool", "leaky_relu", "batchnorm", "global_avgpool"):
            assert f'"{kind}"' not in text, f"{path.name} names the layer kind {kind!r}"


def test_every_kind_is_exercised_by_a_test_spec() -> None:
    assert set(LAYER_KINDS) - _kinds_used_in_specs() == set()


@pytest.mark.parametrize("kind", KINDS)
def test_models_are_data_only(kind: str) -> None:
    model = LAYER_KINDS[kind]
    assert issubclass(model, LayerSpec)
    assert model.model_fields["kind"].default == kind
    assert model.model_config["frozen"] and model.model_config["extra"] == "forbid"
