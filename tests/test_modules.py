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
