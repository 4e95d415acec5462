"""Graphs, names and per-structure classes, on the specs an attacker's review
of them found wrong (each once crashed, mis-counted, or generated source that
did not run or was not ruff-clean). Valid specs go through the whole contract;
invalid ones must be one located error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import assert_ruff_accepts

import archcompile
from archcompile.errors import ArchcError

HEAD = "archc: 1\nname: Net\ninput: [3, 8, 8]\n"

VALID = {
    "fixed param also a width": """
define:
  u:
    params: [n]
    layers:
      - repeat: {times: $n, layers: [{conv: {out: $n, kernel: 1}}]}
blocks:
  a: [{u: [2]}, {u: [3]}]
""",
    "group with a fixed member": """
define:
  u:
    params: [c, [w, n]]
    layers:
      - conv: {out: $w, kernel: 1}
      - repeat: {times: $n, layers: [{conv: {out: $c, kernel: 1}}]}
blocks:
  a: [{u: [4, [5, 2]]}, {u: [4, [6, 2]]}, {u: [4, [5, 1]]}]
""",
    "activation in a group": """
define:
  u:
    params: [[c, act]]
    layers: [{conv: {out: $c, kernel: 1, activation: $act}}]
blocks:
  a: [{u: [[4, relu]]}, {u: [[5, gelu]]}]
""",
    "outer param fixed through an inner repeat": """
define:
  inner:
    params: [m]
    layers: [{repeat: {times: $m, layers: [relu]}}]
  outer:
    params: [n]
    layers: [{inner: [$n]}, {conv: {out: $n, kernel: 1}}]
blocks:
  a: [{outer: [2]}, {outer: [3]}]
""",
    "kernel parameter before flatten and linear": """
define:
  u:
    params: [k]
    layers: [{conv: {out: 4, kernel: $k}}, flatten, {linear: {out: 2}}]
blocks:
  a: [{u: [3]}]
""",
    "pool parameter before flatten and linear": """
define:
  u:
    params: [s]
    layers: [{maxpool: {kernel: $s}}, flatten, {linear: {out: 2}}]
blocks:
  a: [{u: [2]}]
""",
    "sized class inside another define": """
define:
  head:
    params: [n]
    layers: [flatten, {linear: {out: $n}}]
  wrap:
    params: [n]
    layers: [{conv: {out: 4, kernel: 3, padding: 1}}, {head: [$n]}]
blocks:
  a: [{wrap: [5]}]
""",
    "a value concatenated twice": """
blocks:
  a: [{conv: {out: 3, kernel: 1}}]
  b:
    - concat:
      from: [a, a, input]
    - conv: {out: 2, kernel: 1}
""",
    "a named value concatenated twice in a define": """
define:
  u:
    layers:
      - conv: {out: 2, kernel: 1}
        name: c
      - concat:
        from: [c, c]
blocks:
  a: [u]
""",
    "long names": """
blocks:
  first_block_with_an_extremely_long_name_abcdef: [{conv: {out: 3, kernel: 1}}]
  second_block_with_an_extremely_long_name_abcdef: [relu]
  c:
    - add:
      from: [first_block_with_an_extremely_long_name_abcdef, second_block_with_an_extremely_long_name_abcdef]
outputs:
  - c
  - {name: second_block_with_an_extremely_long_name_abcdef, training_only: true}
""",
    "long names in a define": """
define:
  u:
    layers:
      - conv: {out: 3, kernel: 1}
        name: a_very_long_layer_name_number_one_abcdefghijk
      - relu:
        from: input
        name: a_very_long_layer_name_number_three_abcdefghij
      - add:
        from: [a_very_long_layer_name_number_one_abcdefghijk, a_very_long_layer_name_number_three_abcdefghij]
blocks:
  a: [u]
""",
}

INVALID = {
    "outputs: []": ("blocks:\n  a: [relu]\noutputs: []\n", "outputs lists no block"),
    "from inside repeat": (
        (
            "blocks:\n  a:\n    - conv: {out: 4, kernel: 1}\n    - repeat:\n        times: 2\n"
            "        layers:\n          - conv: {out: 3, kernel: 1}\n            from: input\n"
        ),
        "from: is allowed on the first layer",
    ),
    "join inside repeat": (
        (
            "blocks:\n  a:\n    - conv: {out: 4, kernel: 1}\n"
            "    - repeat: {times: 2, layers: [{concat: null, from: [input, input]}]}\n"
        ),
        "from: is allowed on the first layer",
    ),
    "one-item branch that expands to two": (
        (
            "blocks:\n  a:\n    - add:\n        p: {repeat: {times: 2, layers: [{conv: {out: 3, kernel: 1}}]}}\n"
            "        q: []\n"
        ),
        "branch 'p' is written as one item but expands to 2",
    ),
    "a name and a branch alike": (
        (
            "define:\n  u:\n    layers:\n      - conv: {out: 3, kernel: 1}\n        name: main\n"
            "      - add:\n          main: [{conv: {out: 3, kernel: 1}}]\n          sc: []\n"
            "blocks:\n  a: [u]\n"
        ),
        "name 'main' is used twice",
    ),
    "block named input": (
        "blocks:\n  input: [{conv: {out: 4, kernel: 1}}]\n  b:\n    - relu:\n      from: input\n",
        "'input'",
    ),
    "define named like the outputs class": (
        (
            "define:\n  net_outputs:\n    layers: [relu]\nblocks:\n  a: [net_outputs]\n  b: [relu]\n"
            "outputs: [a, b]\n"
        ),
        "the named tuple of the spec's outputs",
    ),
    "block named like the outputs class": (
        "blocks:\n  NetOutputs: [{conv: {out: 3, kernel: 1}}]\n  c: [relu]\noutputs: [c, NetOutputs]\n",
        "is the class of the spec's outputs",
    ),
    "a block no output reads": (
        "blocks:\n  a: [{conv: {out: 4, kernel: 1}}]\n  b: [relu]\noutputs: a\n",
        "block 'b' is not read by any output",
    ),
    "branches and several from": (
        (
            "blocks:\n  a: [{conv: {out: 4, kernel: 1}}]\n  b:\n    - concat:\n        p: []\n"
            "        q: [relu]\n      from: [a, input]\n"
        ),
        "concat reads one value; 2 values must be joined explicitly",
    ),
    "name on a one-item block": (
        "blocks:\n  a: {conv: {out: 4, kernel: 1}, name: foo}\n",
        "a block written as one item is named by its key",
    ),
    "join of mismatched sizes": (
        "blocks:\n  a: [{conv: {out: 4, kernel: 2}}]\n  b:\n    - add:\n      from: [a, input]\n",
        "add inputs differ: a gives [N, 4, 7, 7], input gives [N, 3, 8, 8]",
    ),
}


def _module(source: str, tmp_path: Path):
    path = tmp_path / "generated.py"
    path.write_text(source)
    assert_ruff_accepts(path)
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if a is None or b is None:
        return a is None and b is None
    return a._fields == b._fields and all(_same(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_graph_specs_keep_the_whole_contract(text: str, tmp_path: Path) -> None:
    spec = archcompile.load_spec_text(HEAD + text, "case.yaml")
    tree = archcompile.infer_shapes(spec)
    live = archcompile.build(spec)
    assert sum(p.numel() for p in live.parameters()) == tree.total_params
    generated = _module(archcompile.generate_source(spec), tmp_path).Net()
    assert {k: v.shape for k, v in generated.state_dict().items()} == {
        k: v.shape for k, v in live.state_dict().items()
    }
    generated.load_state_dict(live.state_dict(), strict=True)
    x = torch.randn(2, *spec.graph.input)
    for train in (True, False):
        seen = {}
        for block in tree.blocks:
            module = getattr(live, block.name, None)
            if module is not None:
                module.register_forward_hook(
                    lambda _m, _i, out, n=block.name, seen=seen: seen.__setitem__(
                        n, tuple(out.shape[1:])
                    )
                )
        live.train(train)
        generated.train(train)
        torch.manual_seed(0)
        a = live(x)
        torch.manual_seed(0)
        b = generated(x)
        assert _same(a, b)
        assert all(seen[n] == tree.block(n).shape for n in seen)
        live._forward_hooks.clear()
        for module in live.children():
            module._forward_hooks.clear()


@pytest.mark.parametrize(("text", "message"), INVALID.values(), ids=INVALID.keys())
def test_invalid_graph_specs_are_one_located_error(text: str, message: str) -> None:
    with pytest.raises(ArchcError) as info:
        spec = archcompile.load_spec_text(HEAD + text, "case.yaml")
        archcompile.infer_shapes(spec)
    first = info.value.diagnostics[0]
    assert message in first.message, first.format()
    assert first.file == "case.yaml" and first.line is not None


def test_fixed_parameters_are_not_arguments_and_name_the_class() -> None:
    source = archcompile.generate_source(
        archcompile.load_spec_text(HEAD + VALID["fixed param also a width"])
    )
    assert "class UN2(nn.Module):" in source and "class UN3(nn.Module):" in source
    assert "UN2(3)" in source and "nn.Conv2d(in_channels, 2, kernel_size=1)" in source


def test_extends_replaces_a_block_written_as_one_item(tmp_path: Path) -> None:
    """A child's block replaces the base's block whole, also when both are
    written as one item (mappings), instead of merging their arguments."""
    (tmp_path / "base.yaml").write_text(
        HEAD + "blocks:\n  b: {conv: {out: 4, kernel: 3, padding: 1}}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\nblocks:\n  b: {conv: {out: 8, kernel: 1}}\n"
    )
    tree = archcompile.infer_shapes(archcompile.load_spec(tmp_path / "child.yaml"))
    assert tree.block("b").shape == (8, 8, 8)
    assert tree.total_params == 3 * 8 + 8  # a 1x1 conv: the base's kernel 3 is gone
