"""The kinds of today's convolutional networks: mul's broadcasting, norm
arguments and the defaults that reach them, shapes against torch, the hints
for unknown kinds, and the examples of every kind's docs section."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import ROOT
from torch import nn
from torch.nn import functional as F

import archcompile
from archcompile.errors import ShapeError, SpecError
from archcompile.joins import join_shapes
from archcompile.layers import COMBINATORS, LAYER_KINDS
from archcompile.shapes import ShapeProblem
from archcompile.spec.kindhint import kind_hint
from archcompile.symbolic import Expr

HEADER = "archc: 1\nname: Net\ninput: [3, 12, 10]\n"


def _spec(body: str):
    return archcompile.load_spec_text(HEADER + body, "net.yaml")


def _norms(body: str) -> list[nn.Module]:
    model = archcompile.build(_spec(body))
    return [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]


# -- mul: torch broadcasting over [C, H, W] --------------------------------------------


@pytest.mark.parametrize(
    ("shapes", "out"),
    [
        ([(16, 8, 8), (16, 1, 1)], (16, 8, 8)),  # squeeze-and-excitation
        ([(16, 8, 8), (1, 8, 8)], (16, 8, 8)),  # a spatial attention map
        ([(1, 8, 8), (16, 1, 1)], (16, 8, 8)),  # both broadcast
        ([(16, 8, 8), (16, 8, 8), (1, 1, 1)], (16, 8, 8)),
        ([(32,), (32,)], (32,)),
    ],
)
def test_mul_broadcasts_as_torch(shapes, out) -> None:
    assert join_shapes("mul", shapes, names=[f"b{i}" for i in range(len(shapes))]) == out
    tensors = [torch.zeros(2, *s) for s in shapes]
    product = tensors[0]
    for t in tensors[1:]:
        product = product * t
    assert tuple(product.shape[1:]) == out


def test_mul_names_the_sizes_that_clash() -> None:
    with pytest.raises(ShapeProblem) as info:
        join_shapes(
            "mul", [(16, 8, 8), (16, 1, 1), (8, 1, 1)], names=["x", "g", "h"], what="branch"
        )
    message = str(info.value)
    assert "x gives [N, 16, 8, 8], h gives [N, 8, 1, 1]" in message
    assert "their channels (16 and 8) differ and neither is 1" in message
    assert "equal in both, or 1 in one" in info.value.hint
    with pytest.raises(ShapeProblem, match="height"):
        join_shapes("mul", [(4, 8, 8), (4, 3, 8)], names=["a", "b"], what="input")
    with pytest.raises(ShapeProblem, match="differ in rank"):
        join_shapes("mul", [(4, 8, 8), (4,)], names=["a", "b"], what="input")


def test_mul_is_symbolic_inside_a_class() -> None:
    c, h = Expr.name("c"), Expr.name("H")
    assert join_shapes("mul", [(c, h, h), (c, 1, 1)]) == (c, h, h)
    assert join_shapes("mul", [(Expr.name("in_channels"), h, h), (c, 1, 1)])[1:] == (h, h)


def test_mul_join_of_values_matches_torch() -> None:
    spec = _spec(
        "blocks:\n  a: [{conv: {out: 8, kernel: 1}}]\n  g: [global_maxpool, sigmoid]\n"
        "  b:\n    - mul:\n      from: [a, g]\n    - relu\n"
    )
    model = archcompile.build(spec).eval()
    x = torch.randn(2, 3, 12, 10)
    with torch.no_grad():
        a = model.a(x)
        expected = torch.relu(a * model.g(a))
        assert torch.equal(model(x), expected)


# -- norm arguments, and the defaults that reach them --------------------------------------


def test_norm_arguments_are_torch_arguments() -> None:
    (bn,) = _norms("blocks: {b: [{conv: {out: 8, kernel: 3, norm: {batch: {eps: 0.001}}}}]}")
    assert (bn.eps, bn.momentum) == (0.001, 0.1)
    (gn,) = _norms("blocks: {b: [{conv: {out: 8, kernel: 3, norm: {group: {groups: 4}}}}]}")
    assert (gn.num_groups, gn.num_channels, gn.eps) == (4, 8, 1e-5)


def test_defaults_of_batchnorm_reach_the_norm_of_a_conv() -> None:
    body = (
        "defaults: {batchnorm: {eps: 0.001, momentum: 0.01}}\n"
        "blocks:\n  b:\n"
        "    - conv: {out: 8, kernel: 3, norm: batch}\n"
        "    - conv_transpose: {out: 8, kernel: 2, stride: 2, norm: {batch: {momentum: 0.3}}}\n"
        "    - batchnorm\n"
    )
    assert [(m.eps, m.momentum) for m in _norms(body)] == [
        (0.001, 0.01),
        (0.001, 0.3),  # written on the norm: it wins
        (0.001, 0.01),
    ]
    source = archcompile.generate_source(_spec(body))
    assert "nn.BatchNorm2d(8, eps=0.001, momentum=0.01)" in source


def test_a_conv_default_norm_comes_before_the_batchnorm_defaults() -> None:
    body = (
        "defaults:\n"
        "  conv: {norm: {batch: {eps: 0.002}}}\n"
        "  batchnorm: {eps: 0.001, momentum: 0.05}\n"
        "blocks:\n  b:\n"
        "    - conv: {out: 8, kernel: 1}\n"  # the default norm
        "    - conv: {out: 8, kernel: 1, norm: batch}\n"  # its arguments from the default
        "    - conv: {out: 8, kernel: 1, norm: {batch: {eps: 0.1}}}\n"
        "    - conv: {out: 8, kernel: 1, norm: null}\n"
        "    - conv: {out: 8, kernel: 1, norm: {group: {groups: 2}}}\n"
    )
    norms = _norms(body)
    assert [(m.eps, m.momentum) for m in norms[:3]] == [(0.002, 0.05), (0.002, 0.05), (0.1, 0.05)]
    assert isinstance(norms[3], nn.GroupNorm) and norms[3].eps == 1e-5  # batch defaults: not here
    assert len(norms) == 4


def test_a_default_of_no_norm() -> None:
    body = "defaults: {conv: {norm: null}, batchnorm: {eps: 0.01}}\nblocks:\n  b:\n"
    body += "    - conv: {out: 8, kernel: 1}\n    - conv: {out: 8, kernel: 1, norm: batch}\n"
    assert [m.eps for m in _norms(body)] == [0.01]


def test_groupnorm_defaults_reach_a_conv_group_norm() -> None:
    body = "defaults: {groupnorm: {eps: 1.0e-6}}\nblocks:\n  b:\n"
    body += "    - conv: {out: 8, kernel: 1, norm: {group: {groups: 2}}}\n"
    (gn,) = _norms(body)
    assert gn.eps == 1e-6


def test_names_inside_a_norm() -> None:
    body = (
        "params: {eps: 0.001}\n"
        "define:\n  unit:\n    params: [c, m]\n    layers:\n"
        "      - conv: {out: $c, kernel: 1, norm: {batch: {eps: 0.001, momentum: $m}}}\n"
        "blocks:\n  b:\n    - conv: {out: 8, kernel: 1, norm: {batch: {eps: $eps}}}\n"
        "    - unit: [8, 0.01]\n    - unit: [8, 0.02]\n"
    )
    assert [(m.eps, m.momentum) for m in _norms(body)] == [
        (0.001, 0.1),
        (0.001, 0.01),
        (0.001, 0.02),
    ]
    source = archcompile.generate_source(_spec(body))
    # the momentum decides the modules: one class per value, with it written in
    assert "nn.BatchNorm2d(c, eps=0.001, momentum=0.01)" in source
    assert "nn.BatchNorm2d(c, eps=0.001, momentum=0.02)" in source


def test_undefined_name_inside_a_norm_is_located() -> None:
    with pytest.raises(SpecError) as info:
        _spec("blocks: {b: [{conv: {out: 8, kernel: 1, norm: {batch: {eps: $nope}}}}]}")
    first = info.value.first
    assert first.message == "undefined name $nope"
    assert first.path == "blocks.b[0].conv.norm.batch.eps"


# -- shapes against torch ---------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        "conv_transpose: {out: 6, kernel: 3, stride: 2, padding: 1, output_padding: 1}",
        "conv_transpose: {out: 6, kernel: [2, 3], stride: [2, 1], dilation: 2, groups: 3}",
        "conv_transpose: {out: 4, kernel: 4, stride: 3, padding: 2, output_padding: [2, 0]}",
        "upsample: {scale: [2, 3]}",
        "upsample: {size: [7, 5], mode: bilinear}",
        "upsample: {scale: 3, mode: bilinear, align_corners: true}",
        "adaptive_maxpool: {size: [4, 3]}",
        "groupnorm: {groups: 3, affine: false}",
        "channel_split: {parts: 3, index: 2}",
    ],
)
def test_shapes_and_params_match_torch(layer: str) -> None:
    spec = _spec(f"blocks:\n  b:\n    - {layer}\n")
    report = archcompile.infer_shapes(spec)
    model = archcompile.build(spec)
    out = model(torch.randn(2, 3, 12, 10))
    assert tuple(out.shape[1:]) == report.blocks[0].shape
    assert sum(p.numel() for p in model.parameters()) == report.total_params


def _shuffled(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


@pytest.mark.parametrize(
    ("layer", "reference"),
    [
        ("adaptive_maxpool: {size: [4, 3]}", lambda x: F.adaptive_max_pool2d(x, (4, 3))),
        ("global_maxpool", lambda x: x.amax((2, 3), keepdim=True)),
        ("upsample: {size: [7, 5]}", lambda x: F.interpolate(x, size=(7, 5))),
        (
            "upsample: {scale: 2, mode: bilinear, align_corners: true}",
            lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
        ),
        ("channel_split: {parts: 3, index: 2}", lambda x: x.chunk(3, 1)[2]),
        ("channel_shuffle: {groups: 3}", lambda x: _shuffled(x, 3)),
        ("relu6", lambda x: x.clamp(0, 6)),
        ("hardswish", F.hardswish),
        ("hardsigmoid", F.hardsigmoid),
    ],
)
def test_the_modules_compute_what_the_docs_say(layer: str, reference) -> None:
    text = f"archc: 1\nname: Net\ninput: [6, 12, 10]\nblocks:\n  b:\n    - {layer}\n"
    model = archcompile.build(archcompile.load_spec_text(text, "net.yaml"))
    x = torch.randn(2, 6, 12, 10) * 4
    assert torch.equal(model(x), reference(x))


def test_pixel_shuffle_needs_channels_divisible_by_the_factor_squared() -> None:
    with pytest.raises(ShapeError, match="divisible by 9"):
        archcompile.infer_shapes(_spec("blocks: {b: [{pixel_shuffle: {factor: 3}}]}"))


# -- unknown kinds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "hint"),
    [
        ("maxpol", "did you mean 'maxpool'?"),
        ("upsampling", "did you mean 'upsample'?"),
        ("convtranspose", "did you mean 'conv_transpose'?"),
        ("ConvTranspose2d", "did you mean 'conv_transpose'?"),
        ("hard_swish", "did you mean 'hardswish'?"),
        ("group_norm", "did you mean 'groupnorm'?"),
        ("SiLU", "did you mean 'silu'?"),
        ("BatchNorm2d", "did you mean 'batchnorm'?"),
        ("AdaptiveAvgPool2d", "did you mean 'adaptive_avgpool'?"),
        ("relu7", "did you mean 'relu'?"),
        ("pool", "did you mean 'maxpool' or 'avgpool'?"),
        ("reshape", "archc has no reshape: 'flatten'"),
        ("swish", "'silu' is swish"),
        ("multiply", "'mul' multiplies branches"),
        ("elu", "archc has no 'elu' layer"),
        ("softmax", "archc has no 'softmax' layer"),
        ("xyz", "see docs/spec-language.md#layer-kinds"),
    ],
)
def test_unknown_kinds_get_close_real_kinds_only(word: str, hint: str) -> None:
    assert hint in kind_hint(word, [*LAYER_KINDS, *COMBINATORS, "inception"])


def test_the_hint_names_the_spec_own_blocks() -> None:
    body = "define:\n  basic_block:\n    params: [c]\n    layers: [{conv: {out: $c, kernel: 1}}]\n"
    with pytest.raises(SpecError) as info:
        _spec(body + "blocks: {b: [{BasicBlock: [8]}]}")
    assert info.value.first.hint == "did you mean 'basic_block'?"


# -- the docs -----------------------------------------------------------------------------


def _kind_examples() -> list[tuple[str, str]]:
    """(kind, YAML) of every example in a kind's or mul's section of the docs."""
    text = (ROOT / "docs" / "spec-language.md").read_text()
    found = []
    for section in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        heading = section.split("\n", 1)[0].strip().strip("`")
        if heading not in LAYER_KINDS and heading != "mul":
            continue
        for block in re.findall(r"^```yaml\n(.*?)^```", section, re.MULTILINE | re.DOTALL):
            found.append((heading, block))
    return found


@pytest.mark.parametrize(("kind", "example"), _kind_examples())
def test_every_kind_example_in_the_docs_is_valid(kind: str, example: str) -> None:
    """Each example is a valid layer list (its $names given a value)."""
    names = sorted(set(re.findall(r"\$(\w+)", example)))
    params = {n: 0.5 if n in ("drop", "p") else 16 for n in names}
    items = "\n".join("    " + line for line in example.splitlines())
    archcompile.load_spec_text(
        f"{HEADER}params: {params or {}}\nblocks:\n  b:\n{items}\n", "docs.yaml"
    )


def test_a_mobile_block_with_expressions_norm_defaults_and_squeeze_excite(tmp_path) -> None:
    """EfficientNet's block as a person writes it: a depthwise conv (groups:
    $in_channels, validated with the input's shape), the batch norm defaults
    of its paper, a squeeze-and-excitation mul; generated = live."""
    body = (
        "defaults: {batchnorm: {eps: 0.001, momentum: 0.01}, conv: {norm: batch}}\n"
        "define:\n  mb:\n    params: [k]\n    layers:\n"
        "      - conv: {out: $in_channels, kernel: $k, padding: $k // 2,"
        " groups: $in_channels, activation: silu}\n"
        "      - mul:\n          main: []\n          se:\n            - global_avgpool\n"
        '            - conv: {out: "max(1, $in_channels // 4)", kernel: 1, norm: null,'
        " activation: silu}\n"
        "            - conv: {out: $in_channels, kernel: 1, norm: null}\n"
        "            - sigmoid\n"
        "blocks:\n  b: [{mb: [3]}, {mb: [5]}]\n"
    )
    spec = _spec(body)
    live = archcompile.build(spec).eval()
    assert [(m.eps, m.momentum) for m in _norms(body)] == [(0.001, 0.01)] * 2
    source = archcompile.generate_source(spec)
    assert "nn.BatchNorm2d(in_channels, eps=0.001, momentum=0.01)" in source
    assert "x = x * se" in source
    scope: dict = {}
    exec(compile(source, str(tmp_path / "net.py"), "exec"), scope)  # noqa: S102
    generated = scope["Net"]().eval()
    generated.load_state_dict(live.state_dict(), strict=True)
    x = torch.randn(2, 3, 12, 10)
    assert torch.equal(generated(x), live(x))


def test_a_shufflenet_unit_splits_its_symbolic_width(tmp_path) -> None:
    body = (
        "define:\n  unit:\n    params: [c]\n    layers:\n      - concat:\n"
        "          kept: {channel_split: {parts: 2, index: 0}}\n          mixed:\n"
        "            - channel_split: {parts: 2, index: 1}\n"
        "            - conv: {out: $c, kernel: 1, norm: batch, activation: relu}\n"
        "      - channel_shuffle: {groups: 2}\n"
        "blocks:\n  stem: [{conv: {out: 8, kernel: 1}}]\n  b: [{unit: [4]}, {unit: [4]}]\n"
    )
    spec = _spec(body)
    source = archcompile.generate_source(spec)
    assert "nn.Conv2d(in_channels // 2, c, kernel_size=1, bias=False)" in source
    assert source.count("class Unit(") == 1
    live = archcompile.build(spec).eval()
    scope: dict = {}
    exec(compile(source, str(tmp_path / "net.py"), "exec"), scope)  # noqa: S102
    generated = scope["Net"]().eval()
    generated.load_state_dict(live.state_dict(), strict=True)
    x = torch.randn(2, 3, 12, 10)
    assert torch.equal(generated(x), live(x))
