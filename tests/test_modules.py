"""archc's own module classes (archcompile/modules): one source text, used by
both backends. The live backend instantiates the class, the generated file
carries a verbatim copy of it, only when used."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import assert_ruff_accepts

import archcompile
from archcompile import modules
from archcompile.errors import SpecError

SPEC = """\
archc: 1
name: Residual
input: [4, 6, 6]
blocks:
  body:
    - add:
        main:
          - conv: {out: 4, kernel: 3, padding: 1}
          - stochastic_depth: {p: 0.5}
        shortcut: []
  head:
    - flatten
    - linear: {out: 3}
"""


def _generated(spec, tmp_path: Path):
    path = tmp_path / "generated_model.py"
    path.write_text(archcompile.generate_source(spec))
    loader = importlib.util.spec_from_file_location("generated_model", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return path, module


def test_every_helper_imports_only_torch_and_is_ruff_clean(tmp_path: Path) -> None:
    table = modules.registry()
    assert {"Attention", "StochasticDepth", "LayerNorm2d"} <= set(table)
    for name, helper in table.items():
        assert helper.source.startswith(f"class {name}(")
        assert helper.imports <= set(modules.ALLOWED_IMPORTS)
        assert modules.load(name).__name__ == name


def test_generated_file_carries_the_same_text_only_when_used(tmp_path: Path) -> None:
    spec = archcompile.load_spec_text(SPEC)
    source = archcompile.generate_source(spec)
    assert modules.registry()["StochasticDepth"].source in source
    assert "class Attention(" not in source  # not used: not printed
    assert "archcompile" not in source
    path, _ = _generated(spec, tmp_path)
    assert_ruff_accepts(path)
    assert {n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)} == {
        "StochasticDepth",
        "Add",
        "Residual",
    }


def test_live_and_generated_agree_and_script(tmp_path: Path) -> None:
    spec = archcompile.load_spec_text(SPEC)
    live = archcompile.build(spec)
    _, module = _generated(spec, tmp_path)
    generated = module.Residual()
    assert list(generated.state_dict()) == list(live.state_dict())
    generated.load_state_dict(live.state_dict())
    x = torch.randn(8, 4, 6, 6)
    for train in (False, True):
        for model in (live, generated):
            model.train(train)
        torch.manual_seed(0)
        a = live(x)
        torch.manual_seed(0)
        b = generated(x)
        assert torch.equal(a, b)
    scripted = torch.jit.script(generated.eval())
    assert torch.equal(scripted(x), live.eval()(x))
    torch.jit.script(live.body)  # the live class itself scripts too


def test_stochastic_depth_is_torchvisions() -> None:
    """Same semantics as torchvision.ops.stochastic_depth (mode row): whole
    samples dropped, survivors scaled by 1 / (1 - p), identity in eval."""
    layer = modules.load("StochasticDepth")(0.5)
    x = torch.ones(64, 3, 2, 2)
    torch.manual_seed(0)
    y = layer.train()(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # one draw per sample
    assert torch.equal(layer.eval()(x), x)
    batch = modules.load("StochasticDepth")(0.5, mode="batch").train()
    assert len(batch(x).unique()) == 1


def test_a_spec_cannot_take_a_helper_class_name() -> None:
    with pytest.raises(SpecError, match="'StochasticDepth' is used by the generated code"):
        archcompile.load_spec_text(SPEC.replace("name: Residual", "name: StochasticDepth"))


def _window_attention_by_hand(module, x: torch.Tensor) -> torch.Tensor:
    """Swin's shifted window attention written out token by token (Liu et al.,
    2021, section 3.2): roll the grid by -shift, attend within each window with
    the relative position bias, where tokens of different regions of the rolled
    grid are masked with -100 (the value the reference implementations use),
    project, roll back."""
    n, length, d = x.shape
    h, w, win, s, heads = module.height, module.width, module.window, module.shift, module.heads
    grid = torch.roll(x.reshape(n, h, w, d), (-s, -s), (1, 2))
    qkv = module.qkv(grid).reshape(n, h, w, 3, heads, d // heads)
    table = module.relative_position_bias_table

    def region(r: int, size: int) -> int:
        return 0 if r < size - win else (1 if r < size - s else 2) if s else 0

    out = torch.zeros(n, h, w, heads, d // heads)
    for top in range(0, h, win):
        for left in range(0, w, win):
            cells = [(top + i, left + j) for i in range(win) for j in range(win)]
            bias = torch.zeros(heads, len(cells), len(cells))
            for a, (ya, xa) in enumerate(cells):
                for b, (yb, xb) in enumerate(cells):
                    row = (ya - yb + win - 1) * (2 * win - 1) + (xa - xb + win - 1)
                    same = (region(ya, h), region(xa, w)) == (region(yb, h), region(xb, w))
                    bias[:, a, b] = table[row] + (0.0 if same else -100.0)
            q, k, v = (torch.stack([qkv[:, y, c, t] for y, c in cells], 2) for t in range(3))
            weights = (q @ k.transpose(-1, -2) / (d // heads) ** 0.5 + bias).softmax(-1)
            result = weights @ v  # n, heads, cells, head width
            for index, (y, c) in enumerate(cells):
                out[:, y, c] = result[:, :, index]
    out = torch.roll(out.reshape(n, h, w, d), (s, s), (1, 2))
    return module.proj(out.reshape(n, length, d))


@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_is_swins(shift: int) -> None:
    torch.manual_seed(0)
    module = modules.load("WindowAttention")(8, 2, 8, 8, 4, shift=shift).eval()
    x = torch.randn(2, 64, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), _window_attention_by_hand(module, x))
        scripted = torch.jit.script(module)
        assert torch.equal(scripted(x), module(x))
        assert list(scripted.state_dict()) == list(module.state_dict())
    # the position index and the shift mask are computed: no buffers
    assert list(module.state_dict()) == [
        "relative_position_bias_table",
        "qkv.weight",
        "qkv.bias",
        "proj.weight",
        "proj.bias",
    ]


def test_merge_patches_is_torchvisions_order() -> None:
    """2x2 groups in the order (0, 0), (1, 0), (0, 1), (1, 1) of torchvision's
    PatchMerging: top-left, bottom-left, top-right, bottom-right."""
    grid = torch.arange(16.0).reshape(1, 16, 1)  # a 4x4 grid, token i has value i
    merged = modules.load("MergePatches")(4, 4)(grid)
    assert merged.tolist() == [[[0, 4, 1, 5], [2, 6, 3, 7], [8, 12, 9, 13], [10, 14, 11, 15]]]


def test_helper_files_may_import_only_torch() -> None:
    """A helper class is copied into files that import only torch: a helper
    file importing anything else is refused when the package is read."""
    text = "import os\nfrom torch import Tensor, nn\n"
    with pytest.raises(ValueError, match="may only use"):
        modules._imports_of(ast.parse(text), text)
