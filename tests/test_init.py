"""``init:``: each initializer's statistics, and the same weights from the live
module and the generated source for the same seed."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from torch import nn

import archcompile
from archcompile.spec import load_spec_text

# a conv of fan-in 64*25 = 1600 and fan-out 32*25 = 800 (51,200 weights) and a
# linear of fan-in 512 and fan-out 256 (131,072 weights): std estimates within 1%
NET = """archc: 1
name: Net
input: [64, 6, 6]
{init}
blocks:
  b:
    - conv: {{out: 32, kernel: 5, padding: 2}}
    - global_avgpool
    - flatten
    - linear: {{out: 512}}
    - linear: {{out: 256}}
"""


def _build(init: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return archcompile.build(load_spec_text(NET.format(init=init)))


def _layers(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def _within(value: float, expected: float, rel: float = 0.05) -> bool:
    return abs(value - expected) <= rel * expected


CONV_FANS = (64 * 25, 32 * 25)
LINEAR_FANS = (512, 256)  # the second linear: 512 in, 256 out


@pytest.mark.parametrize(
    ("init", "std_of"),
    [
        ("glorot_uniform", lambda fi, fo: math.sqrt(2 / (fi + fo))),
        ("glorot_normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
        ("kaiming_uniform", lambda fi, fo: math.sqrt(2 / fi)),
        ("kaiming_normal", lambda fi, fo: math.sqrt(2 / fi)),
        ("{kaiming_normal: {mode: fan_out}}", lambda fi, fo: math.sqrt(2 / fo)),
        ("{kaiming_uniform: {nonlinearity: linear}}", lambda fi, fo: math.sqrt(1 / fi)),
        ("{normal: {std: 0.01}}", lambda fi, fo: 0.01),
    ],
)
def test_weight_std_follows_the_formula(init: str, std_of) -> None:
    model = _build(f"init: {init}")
    conv = _layers(model, nn.Conv2d)[0]
    linear = _layers(model, nn.Linear)[1]
    assert _within(conv.weight.std().item(), std_of(*CONV_FANS)), init
    assert _within(linear.weight.std().item(), std_of(*LINEAR_FANS)), init
    assert abs(conv.weight.mean().item()) < 0.05 * std_of(*CONV_FANS)


def test_uniform_and_normal_differ_in_shape() -> None:
    uniform = _build("init: glorot_uniform")
    normal = _build("init: glorot_normal")
    bound = math.sqrt(6 / sum(CONV_FANS))
    w = _layers(uniform, nn.Conv2d)[0].weight
    assert w.abs().max().item() <= bound
    assert _layers(normal, nn.Conv2d)[0].weight.abs().max().item() > bound


def test_trunc_normal_is_cut_at_two_std() -> None:
    w = _layers(_build("init: {trunc_normal: {std: 0.02}}"), nn.Linear)[1].weight
    assert w.abs().max().item() <= 0.04
    assert w.abs().max().item() > 0.039
    # the standard deviation of a normal cut at +-2 std is 0.8796 std
    assert _within(w.std().item(), 0.8796 * 0.02)


def test_zeros_and_bias() -> None:
    model = _build("init: {default: zeros, bias: {normal: {std: 0.5}}}")
    for layer in _layers(model, (nn.Conv2d, nn.Linear)):
        assert not layer.weight.any()
        assert _within(layer.bias.std().item(), 0.5, 0.25)
    model = _build("init: {bias: zeros}")
    for layer in _layers(model, (nn.Conv2d, nn.Linear)):
        assert not layer.bias.any()
        assert layer.weight.std() > 0


def test_per_kind_over_default() -> None:
    init = "init: {default: zeros, linear: {normal: {std: 0.01}}}"
    model = _build(init)
    assert not _layers(model, nn.Conv2d)[0].weight.any()
    assert _within(_layers(model, nn.Linear)[1].weight.std().item(), 0.01)
    # a kind set to torch keeps torch's default even under a default
    model = _build("init: {default: zeros, conv: torch}")
    assert _layers(model, nn.Conv2d)[0].weight.any()
    assert not _layers(model, nn.Linear)[0].weight.any()


def test_torch_is_torchs_default() -> None:
    plain = _build("").state_dict()
    for init in ("init: torch", "init: {default: torch, bias: torch}", "init:"):
        other = _build(init).state_dict()
        assert all(torch.equal(plain[k], other[k]) for k in plain), init


def test_bundled_googlenet_keeps_torchs_default() -> None:
    for name in ("googlenet.yaml", "googlenet_bn.yaml"):
        assert archcompile.load_spec(ROOT / "specs" / name).graph.init == ()


SPECS = [
    "init: glorot_uniform",
    "init: {default: glorot_uniform, bias: zeros}",
    (
        "init: {conv: {kaiming_normal: {mode: fan_out, nonlinearity: relu}}, "
        "linear: {trunc_normal: {std: 0.02}}, bias: {normal: {mean: 0.1, std: 0.01}}}"
    ),
    "init: {default: {kaiming_uniform: {nonlinearity: leaky_relu}}, linear: glorot_normal}",
]


@pytest.mark.parametrize("init", SPECS)
def test_live_and_generated_weights_are_equal(init: str, tmp_path: Path) -> None:
    spec = load_spec_text(NET.format(init=init))
    path = tmp_path / "net.py"
    path.write_text(archcompile.generate_source(spec))
    loader = importlib.util.spec_from_file_location("net", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    for seed in (0, 7):
        torch.manual_seed(seed)
        generated = module.Net().state_dict()
        live = _build(init, seed).state_dict()
        assert list(generated) == list(live)
        assert all(torch.equal(generated[k], live[k]) for k in live), (init, seed)
    assert not all(torch.equal(_build(init, 0).state_dict()[k], live[k]) for k in live)


def test_generated_source_reads_like_torchvision() -> None:
    spec = load_spec_text(NET.format(init=SPECS[2]))
    source = archcompile.generate_source(spec)
    assert "        for m in self.modules():\n" in source
    assert 'nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")' in source
    assert "nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)" in source
    assert "if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:" in source
    plain = archcompile.generate_source(load_spec_text(NET.format(init="")))
    assert "nn.init" not in plain
