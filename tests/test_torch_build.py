"""Differential tests of the live backend against static inference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import ALL_SPECS, spec_id

import archcompile
from archcompile.backends.layout import wiring
from archcompile.errors import BuildError


def _training_only(spec) -> set[str]:
    """Blocks only training-only outputs need: eval mode does not run them."""
    return {name for name, _, _, only in wiring(spec.graph) if only}


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_forward_shapes_match_static_inference_at_every_block(path: Path, train: bool) -> None:
    spec = archcompile.load_spec(path)
    report = archcompile.infer_shapes(spec)
    model = archcompile.build(spec).train(train)
    skipped = set() if train else _training_only(spec)
    seen: dict[str, tuple[int, ...]] = {}
    for record in report.blocks:
        module = getattr(model, record.name)
        module.register_forward_hook(
            lambda _m, _i, out, name=record.name: seen.__setitem__(name, tuple(out.shape))
        )
    batch = 3
    with torch.no_grad():
        model(torch.randn(batch, *spec.graph.input))
    assert seen == {r.name: (batch, *r.shape) for r in report.blocks if r.name not in skipped}


@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_parameter_count_matches_static_count(path: Path) -> None:
    spec = archcompile.load_spec(path)
    model = archcompile.build(spec)
    report = archcompile.infer_shapes(spec)
    assert sum(p.numel() for p in model.parameters()) == report.total_params
    for record in report.blocks:
        block = getattr(model, record.name)
        assert sum(p.numel() for p in block.parameters()) == record.params


@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_macs_match_fvcore(path: Path) -> None:
    fvcore = pytest.importorskip("fvcore.nn")
    spec = archcompile.load_spec(path)
    model = archcompile.build(spec).eval()
    x = torch.randn(2, *spec.graph.input)
    # fvcore cannot count convolutions with string padding ('same'): torch traces
    # them as aten::_convolution_mode, which it does not handle. Measure those with hooks.
    blind = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and isinstance(module.padding, str):
            module.register_forward_hook(
                lambda m, _i, out: blind.append(
                    out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                )
            )
    analysis = fvcore.FlopCountAnalysis(model, x)
    analysis.set_op_handle("aten::scaled_dot_product_attention", attention_flop_jit)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    counted = sum(
        v
        for k, v in analysis.by_operator().items()
        if k in ("conv", "linear", "addmm", "scaled_dot_product_attention")
    )
    if blind:
        assert "aten::_convolution_mode" in analysis.unsupported_ops()
    report = archcompile.infer_shapes(spec)
    expected = sum(b.macs for b in report.blocks if b.name not in _training_only(spec))
    assert counted + sum(blind) == 2 * expected


def attention_flop_jit(inputs, outputs) -> int:
    """fvcore has no rule for scaled_dot_product_attention: count its two
    matrix products (q @ k^T and weights @ v) as fvcore counts ``matmul``."""
    from fvcore.nn.jit_handles import get_shape

    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    *batch, length, dim = q
    heads_and_batch = 1
    for b in batch:
        heads_and_batch *= b
    return 2 * heads_and_batch * length * k[-2] * dim


def test_googlenet_is_trainable() -> None:
    model = archcompile.build(archcompile.load_spec("specs/googlenet_bn.yaml"))
    loss = model(torch.randn(2, 1, 96, 96)).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_oversized_model_is_refused_before_allocation() -> None:
    spec = archcompile.load_spec_text(
        "archc: 1\nname: Huge\ninput: [3, 8, 8]\nblocks:\n  b:\n    - conv: {out: 100000000, kernel: 3}\n"
    )
    assert archcompile.infer_shapes(spec).total_params == 2_700_000_000 + 100_000_000
    with pytest.raises(BuildError) as info:
        archcompile.build(spec)
    message = info.value.first.message
    assert "2,800,000,000 parameters (10.4 GiB in float32)" in message
    assert "--max-params" in info.value.first.hint


def test_nested_composite_blocks_are_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each composite block's members are built once: building used to walk a
    block's body twice, doubling the work at every level of nesting."""
    depth = 12
    lines = ["define:", "  d0:", "    layers: [{conv: {out: 4, kernel: 1}}]"]
    for i in range(1, depth):
        lines += [f"  d{i}:", f"    layers: [d{i - 1}]"]
    spec = archcompile.load_spec_text(
        "archc: 1\nname: Deep\ninput: [4, 4, 4]\n"
        + "\n".join(lines)
        + f"\nblocks:\n  b: [d{depth - 1}]\n"
    )
    made = []
    original = torch.nn.Conv2d.__init__

    def counting(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Conv2d, "__init__", counting)
    model = archcompile.build(spec)
    assert len(made) == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 1
