"""The optimizing passes (archcompile.passes) keep the model's meaning and its
state_dict, on every bundled and test spec.

For each spec and pass: eval outputs equal the plain build's (float32 passes:
rtol and atol 1e-4 of the output's scale; bf16: 5e-2); the plain
build's state_dict loads strictly into the optimized model (built with other
random weights, after its caches were filled) and the optimized model's back
into a fresh plain one, with the same outputs; one SGD step from the same
weights on the same batch leaves both models with the same eval outputs
(gradients reach the original parameters, BatchNorm statistics update;
compared at 1e-3, as other kernels round differently and a step amplifies it;
bf16 only has to train: a step on bfloat16 gradients diverges further).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archcompile
from archcompile.passes import PASSES, default_passes, optimize, select
from archcompile.passes.fold_bn import count_folded
from archcompile.passes.fuse_siblings import count_fused
from tests.conftest import ALL_SPECS, ROOT, spec_id

#: smaller inputs for the large specs, to keep the suite fast
SMALL_INPUT = {
    "specs/zoo/inception_v1.yaml": (3, 64, 64),
}
#: where each structural pass must find work (counted modules)
EXPECTED = {
    ("fold_bn", "specs/googlenet_bn.yaml"): 57,
    ("fold_bn", "specs/zoo/inception_v1.yaml"): 59,
    ("fold_bn", "tests/specs/resnet_basic.yaml"): 5,
    ("fuse_1x1", "specs/googlenet.yaml"): 27,
    ("fuse_1x1", "specs/googlenet_bn.yaml"): 27,
}
COUNTERS = {"fold_bn": count_folded, "fuse_1x1": count_fused}


def _build(path, seed: int, passes=None) -> nn.Module:
    torch.manual_seed(seed)
    model = archcompile.build(path, input=SMALL_INPUT.get(spec_id(path)), optimize=passes)
    with torch.no_grad():  # BatchNorm statistics away from (0, 1), so folding shows
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return model


def _inputs(path) -> torch.Tensor:
    batch = 1 if _large(path) else 2  # 2: BatchNorm1d trains on no less
    shape = SMALL_INPUT.get(spec_id(path)) or archcompile.load(path).graph.input
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))


def _tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for t in output if t is not None]


def assert_same(actual, expected, name: str, tolerance: float = 1e-4) -> None:
    tolerance = 5e-2 if name == "bf16" else tolerance
    for a, e in zip(_tensors(actual), _tensors(expected), strict=True):
        scale = e.abs().max().item() + 1e-6
        torch.testing.assert_close(a, e, rtol=tolerance, atol=tolerance * scale)


def _eval(model: nn.Module, x: torch.Tensor):
    model.eval()
    with torch.no_grad():
        return model(x)


def _step(model: nn.Module, x: torch.Tensor) -> None:
    model.train()
    torch.manual_seed(3)  # the same dropout masks in both models
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = sum(t.float().square().mean() for t in _tensors(model(x)))
    loss.backward()
    optimizer.step()


#: the large specs with the passes that change them, in the fast suite (the
#: others with all passes, and the large ones' no-op cases, are slow)
APPLIES = {
    "specs/googlenet.yaml": {"fuse_1x1", "channels_last", "bf16"},
    "specs/googlenet_bn.yaml": {"fold_bn", "fuse_1x1", "channels_last"},
    "specs/zoo/inception_v1.yaml": {"fold_bn"},
}


#: the one large spec and pass trained in the fast suite (Inception's fused
#: branches with BatchNorm in training mode; no small spec has them)
TRAINED_LARGE = ("specs/googlenet_bn.yaml", "fuse_1x1")


def _large(path) -> bool:
    """The bundled specs (specs/): real networks, slow to run on 2 cores."""
    return spec_id(path).startswith("specs/")


def _case(path, name):
    slow = _large(path) and name not in APPLIES.get(spec_id(path), set())
    marks = [pytest.mark.slow] if slow else []
    return pytest.param(path, name, marks=marks, id=f"{spec_id(path)}-{name}")


@pytest.mark.parametrize(("path", "name"), [_case(p, n) for p in ALL_SPECS for n in PASSES])
def test_pass_keeps_outputs_and_checkpoints(path, name) -> None:
    x = _inputs(path)
    plain = _build(path, seed=0)
    expected = _eval(plain, x)
    optimized = _build(path, seed=1, passes=[name])
    _eval(optimized, x)  # fills the caches of the other weights
    optimized.load_state_dict(plain.state_dict(), strict=True)
    assert_same(_eval(optimized, x), expected, name)
    assert_same(_eval(optimized, x), expected, name)  # from the caches

    state = optimized.state_dict()
    assert {k: (v.shape, v.dtype) for k, v in state.items()} == {
        k: (v.shape, v.dtype) for k, v in plain.state_dict().items()
    }
    back = _build(path, seed=2)
    back.load_state_dict(state, strict=True)
    assert_same(_eval(back, x), expected, name)

    if _large(path) and (spec_id(path), name) != TRAINED_LARGE:
        return  # training through the passes: the small specs, one large case, and
        # test_fused_training_gradients_equal_plain (a GoogLeNet step is slow on 2 cores)
    _step(plain, x)
    _step(optimized, x)
    if name == "bf16":  # a step on bfloat16 gradients goes elsewhere: it only has to train
        assert all(t.isfinite().all() for t in _tensors(_eval(optimized, x)))
        return
    # after a step, float32 rounding differences of other kernels have grown a little
    assert_same(_eval(optimized, x), _eval(plain, x), name, tolerance=1e-3)


@pytest.mark.parametrize(("name", "spec"), sorted(EXPECTED))
def test_pass_finds_its_work(name, spec) -> None:
    model = archcompile.build(ROOT / spec, optimize=[name])
    assert COUNTERS[name](model) == EXPECTED[(name, spec)]


def test_fused_training_gradients_equal_plain() -> None:
    path = ROOT / "specs" / "googlenet.yaml"  # without BatchNorm on 1 image (ill-conditioned)
    x = _inputs(path)
    models = [_build(path, 0), _build(path, 0, passes=["fuse_1x1"])]
    grads = []
    for model in models:
        model.train()
        _tensors(model(x))[0].square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for key, grad in grads[0].items():
        scale = grad.abs().max().item()
        torch.testing.assert_close(grads[1][key], grad, rtol=1e-3, atol=1e-4 * scale)


def test_channels_last_converts_inputs_and_parameters() -> None:
    # three input channels: a one-channel NCHW batch is channels_last already
    model = archcompile.build(ROOT / "tests" / "specs" / "vgg.yaml", optimize=["channels_last"])
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    conv.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    _eval(model, torch.randn(2, 3, 32, 32))
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


def test_bf16_runs_under_autocast_and_returns_float32() -> None:
    model = archcompile.build(ROOT / "specs" / "googlenet.yaml", optimize=["bf16"])
    seen = []
    model.block1[0].register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    output = _eval(model, torch.randn(1, 1, 96, 96))
    assert seen == [torch.bfloat16]
    assert output.dtype == torch.float32
    assert not torch.is_autocast_enabled("cpu")


def test_select_names_and_default() -> None:
    assert select(True) == default_passes()
    assert select("channels_last, fold_bn") == ("fold_bn", "channels_last")
    assert select(None) == select(False) == ()
    with pytest.raises(archcompile.ArchcError, match="unknown optimization pass 'fold'"):
        select("fold")
    assert optimize(nn.Linear(2, 2), True) is not None  # no conv: nothing to do
