"""specs/zoo: faithful ports of torchvision's classic networks.

Each spec must have exactly the parameter count torchvision publishes for the
model (the figures of the torchvision model docs, torchvision 0.2x: the
``num_params`` of each model's weights), computed by ``archc shapes`` without
torch and by the live module. Static shapes must equal a forward pass, and the
live module the generated source. The state_dict keys and shapes are checked
against torchvision's, written out below from torchvision's model source
(torchvision itself is neither needed nor imported).

Forward passes run at a small input where the network allows it (every net
here ends in an adaptive pool, so the count does not depend on the input);
Inception v3 needs its 299x299 input (its auxiliary head reads a 17x17 grid),
so its forward passes are marked slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, assert_ruff_accepts, import_source

import archcompile

# torchvision's published parameter counts (torchvision 0.2x model docs).
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "resnext50_32x4d": 25_028_904,
    "wide_resnet50_2": 68_883_240,
    "vgg16_bn": 138_365_992,
    "squeezenet1_1": 1_235_496,
    "densenet121": 7_978_856,
    "inception_v3": 27_161_264,
}
SMALL = {name: (3, 32, 32) for name in TORCHVISION_PARAMS}
SMALL["inception_v3"] = None  # needs 3x299x299
# forward passes marked slow: Inception v3 at 299x299, and the two nets that
# are ResNet-50's classes with other arguments (resnet50 runs in the fast set)
SLOW_FORWARD = {"inception_v3", "resnext50_32x4d", "wide_resnet50_2"}
NETS = list(TORCHVISION_PARAMS)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small inputs: one intra-op thread is as fast, and far faster than two
    when the machine is busy (threads wait on each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _path(name: str) -> str:
    return f"specs/zoo/{name}.yaml"


def _forward_param(name: str):
    marks = [pytest.mark.slow] if name in SLOW_FORWARD else []
    return pytest.param(name, marks=marks, id=name)


FORWARD_NETS = [_forward_param(n) for n in NETS]


def test_archc_shapes_gives_torchvisions_counts_without_torch() -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from archcompile.cli import run\n"
        "totals = {}\n"
        f"for name in {NETS!r}:\n"
        "    sys.argv = ['archc', 'shapes', f'specs/zoo/{name}.yaml', '--json']\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            run()\n"
        "        except SystemExit as e:\n"
        "            assert not e.code, e.code\n"
        "    totals[name] = json.loads(out.getvalue())['total_params']\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'totals': totals}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    data = json.loads(result.stdout)
    assert data == {"torch": False, "totals": TORCHVISION_PARAMS}


@pytest.mark.parametrize("name", NETS)
def test_live_module_has_torchvisions_count(name: str) -> None:
    model = archcompile.build(_path(name), input=SMALL[name])
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS[name]
    report = archcompile.shapes(_path(name), input=SMALL[name])
    for record in report.blocks:
        block = getattr(model, record.name)
        assert sum(p.numel() for p in block.parameters()) == record.params, record.name


def test_resnext_and_wide_resnet_are_resnet50_with_two_params_set() -> None:
    def count(**values: int) -> int:
        return archcompile.shapes(_path("resnet50"), set=values).total_params

    assert count(groups=32, width_per_group=4) == TORCHVISION_PARAMS["resnext50_32x4d"]
    assert count(width_per_group=128) == TORCHVISION_PARAMS["wide_resnet50_2"]


@pytest.mark.parametrize("name", FORWARD_NETS)
def test_static_shapes_equal_a_forward_pass(name: str) -> None:
    report = archcompile.shapes(_path(name), input=SMALL[name])
    model = archcompile.build(_path(name), input=SMALL[name]).train()  # aux heads run too
    seen: dict[str, tuple[int, ...]] = {}
    for record in report.blocks:
        getattr(model, record.name).register_forward_hook(
            lambda _m, _i, out, name=record.name: seen.__setitem__(name, tuple(out.shape))
        )
    batch = 2
    with torch.no_grad():
        model(torch.randn(batch, *report.input))
    assert seen == {r.name: (batch, *r.shape) for r in report.blocks}


_module = import_source  # write generated source and import it


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a._fields == b._fields and all(_same(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", FORWARD_NETS)
def test_generated_source_equals_the_live_module(name: str, tmp_path: Path) -> None:
    spec = archcompile.load(_path(name), input=SMALL[name])
    source = archcompile.generate_source(spec)
    module = _module(source, tmp_path, name)
    assert_ruff_accepts(tmp_path / f"{name}.py")
    generated = getattr(module, spec.name)()
    live = archcompile.build(spec)
    gen_state, live_state = generated.state_dict(), live.state_dict()
    assert [(k, v.shape) for k, v in gen_state.items()] == [
        (k, v.shape) for k, v in live_state.items()
    ]
    live.load_state_dict(gen_state, strict=True)
    x = torch.randn(2, *spec.graph.input)
    for train in (False, True):
        generated.train(train)
        live.train(train)
        with torch.no_grad():
            torch.manual_seed(0)
            a = generated(x)
            torch.manual_seed(0)
            b = live(x)
        assert _same(a, b), f"outputs differ in {'train' if train else 'eval'} mode"


# -- torchvision's state_dict keys, written out from torchvision's model source --

Entries = list[tuple[str, tuple[int, ...]]]


def _conv(key: str, out: int, cin: int, kh: int, kw: int | None = None, bias=False) -> Entries:
    entries = [(f"{key}.weight", (out, cin, kh, kh if kw is None else kw))]
    return entries + ([(f"{key}.bias", (out,))] if bias else [])


def _bn(key: str, c: int) -> Entries:
    stats = ["weight", "bias", "running_mean", "running_var"]
    return [(f"{key}.{s}", (c,)) for s in stats] + [(f"{key}.num_batches_tracked", ())]


def _linear(key: str, out: int, cin: int) -> Entries:
    return [(f"{key}.weight", (out, cin)), (f"{key}.bias", (out,))]


def torchvision_resnet(bottleneck: bool, layers, groups=1, width_per_group=64) -> Entries:
    """torchvision.models.resnet.ResNet(block, layers, groups=, width_per_group=)."""
    expansion = 4 if bottleneck else 1
    entries = _conv("conv1", 64, 3, 7) + _bn("bn1", 64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), 1):
        stride = 1 if stage == 1 else 2
        for i in range(blocks):
            key = f"layer{stage}.{i}"
            out = planes * expansion
            if bottleneck:
                width = int(planes * (width_per_group / 64.0)) * groups
                entries += _conv(f"{key}.conv1", width, inplanes, 1) + _bn(f"{key}.bn1", width)
                entries += _conv(f"{key}.conv2", width, width // groups, 3)
                entries += _bn(f"{key}.bn2", width)
                entries += _conv(f"{key}.conv3", out, width, 1) + _bn(f"{key}.bn3", out)
            else:
                entries += _conv(f"{key}.conv1", planes, inplanes, 3) + _bn(f"{key}.bn1", planes)
                entries += _conv(f"{key}.conv2", planes, planes, 3) + _bn(f"{key}.bn2", planes)
            if i == 0 and (stride != 1 or inplanes != out):
                entries += _conv(f"{key}.downsample.0", out, inplanes, 1)
                entries += _bn(f"{key}.downsample.1", out)
            inplanes = out
    return entries + _linear("fc", 1000, 512 * expansion)


def torchvision_vgg16_bn() -> Entries:
    """torchvision.models.vgg16_bn(): make_layers(cfgs['D'], batch_norm=True)."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"] + [512, 512, 512, "M"] * 2
    entries: Entries = []
    index, cin = 0, 3
    for v in cfg:
        if v == "M":
            index += 1
            continue
        entries += _conv(f"features.{index}", v, cin, 3, bias=True) + _bn(
            f"features.{index + 1}", v
        )
        index, cin = index + 3, v
    return (
        entries
        + _linear("classifier.0", 4096, 512 * 7 * 7)
        + _linear("classifier.3", 4096, 4096)
        + _linear("classifier.6", 1000, 4096)
    )


def torchvision_squeezenet1_1() -> Entries:
    """torchvision.models.squeezenet1_1(): features indices and Fire members."""
    fires = {3: (64, 16, 64, 64), 4: (128, 16, 64, 64), 6: (128, 32, 128, 128)}
    fires |= {7: (256, 32, 128, 128), 9: (256, 48, 192, 192), 10: (384, 48, 192, 192)}
    fires |= {11: (384, 64, 256, 256), 12: (512, 64, 256, 256)}
    entries = _conv("features.0", 64, 3, 3, bias=True)
    for index, (cin, s, e1, e3) in fires.items():
        key = f"features.{index}"
        entries += _conv(f"{key}.squeeze", s, cin, 1, bias=True)
        entries += _conv(f"{key}.expand1x1", e1, s, 1, bias=True)
        entries += _conv(f"{key}.expand3x3", e3, s, 3, bias=True)
    return entries + _conv("classifier.1", 1000, 512, 1, bias=True)


def torchvision_densenet121() -> Entries:
    """torchvision.models.densenet121(): growth 32, blocks (6, 12, 24, 16), 64 initial."""
    entries = _conv("features.conv0", 64, 3, 7) + _bn("features.norm0", 64)
    c = 64
    for b, layers in enumerate((6, 12, 24, 16), 1):
        for i in range(1, layers + 1):
            key = f"features.denseblock{b}.denselayer{i}"
            entries += _bn(f"{key}.norm1", c) + _conv(f"{key}.conv1", 128, c, 1)
            entries += _bn(f"{key}.norm2", 128) + _conv(f"{key}.conv2", 32, 128, 3)
            c += 32
        if b != 4:
            key = f"features.transition{b}"
            entries += _bn(f"{key}.norm", c) + _conv(f"{key}.conv", c // 2, c, 1)
            c //= 2
    return entries + _bn("features.norm5", c) + _linear("classifier", 1000, c)


def _basic(key: str, cin: int, out: int, kh: int, kw: int | None = None) -> Entries:
    """torchvision's BasicConv2d: ``conv`` without bias, ``bn``."""
    return _conv(f"{key}.conv", out, cin, kh, kw) + _bn(f"{key}.bn", out)


def _inception(key: str, members: list[tuple]) -> Entries:
    return [e for name, *args in members for e in _basic(f"{key}.{name}", *args)]


def torchvision_inception_v3() -> Entries:
    """torchvision.models.inception_v3(aux_logits=True): the BasicConv2d
    members of each module (in, out, kernel), in registration order."""
    entries = _basic("Conv2d_1a_3x3", 3, 32, 3) + _basic("Conv2d_2a_3x3", 32, 32, 3)
    entries += _basic("Conv2d_2b_3x3", 32, 64, 3) + _basic("Conv2d_3b_1x1", 64, 80, 1)
    entries += _basic("Conv2d_4a_3x3", 80, 192, 3)
    for key, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        entries += _inception(
            key,
            [
                ("branch1x1", cin, 64, 1),
                ("branch5x5_1", cin, 48, 1),
                ("branch5x5_2", 48, 64, 5),
                ("branch3x3dbl_1", cin, 64, 1),
                ("branch3x3dbl_2", 64, 96, 3),
                ("branch3x3dbl_3", 96, 96, 3),
                ("branch_pool", cin, pool, 1),
            ],
        )
    entries += _inception(
        "Mixed_6a",
        [
            ("branch3x3", 288, 384, 3),
            ("branch3x3dbl_1", 288, 64, 1),
            ("branch3x3dbl_2", 64, 96, 3),
            ("branch3x3dbl_3", 96, 96, 3),
        ],
    )
    for key, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        entries += _inception(
            key,
            [
                ("branch1x1", 768, 192, 1),
                ("branch7x7_1", 768, c7, 1),
                ("branch7x7_2", c7, c7, 1, 7),
                ("branch7x7_3", c7, 192, 7, 1),
                ("branch7x7dbl_1", 768, c7, 1),
                ("branch7x7dbl_2", c7, c7, 7, 1),
                ("branch7x7dbl_3", c7, c7, 1, 7),
                ("branch7x7dbl_4", c7, c7, 7, 1),
                ("branch7x7dbl_5", c7, 192, 1, 7),
                ("branch_pool", 768, 192, 1),
            ],
        )
    entries += _inception("AuxLogits", [("conv0", 768, 128, 1), ("conv1", 128, 768, 5)])
    entries += _linear("AuxLogits.fc", 1000, 768)
    entries += _inception(
        "Mixed_7a",
        [
            ("branch3x3_1", 768, 192, 1),
            ("branch3x3_2", 192, 320, 3),
            ("branch7x7x3_1", 768, 192, 1),
            ("branch7x7x3_2", 192, 192, 1, 7),
            ("branch7x7x3_3", 192, 192, 7, 1),
            ("branch7x7x3_4", 192, 192, 3),
        ],
    )
    for key, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        entries += _inception(
            key,
            [
                ("branch1x1", cin, 320, 1),
                ("branch3x3_1", cin, 384, 1),
                ("branch3x3_2a", 384, 384, 1, 3),
                ("branch3x3_2b", 384, 384, 3, 1),
                ("branch3x3dbl_1", cin, 448, 1),
                ("branch3x3dbl_2", 448, 384, 3),
                ("branch3x3dbl_3a", 384, 384, 1, 3),
                ("branch3x3dbl_3b", 384, 384, 3, 1),
                ("branch_pool", cin, 192, 1),
            ],
        )
    return entries + _linear("fc", 1000, 2048)


TORCHVISION_STATE = {
    "resnet18": lambda: torchvision_resnet(False, (2, 2, 2, 2)),
    "resnet50": lambda: torchvision_resnet(True, (3, 4, 6, 3)),
    "resnext50_32x4d": lambda: torchvision_resnet(True, (3, 4, 6, 3), 32, 4),
    "wide_resnet50_2": lambda: torchvision_resnet(True, (3, 4, 6, 3), width_per_group=128),
    "vgg16_bn": torchvision_vgg16_bn,
    "squeezenet1_1": torchvision_squeezenet1_1,
    "densenet121": torchvision_densenet121,
    "inception_v3": torchvision_inception_v3,
}


def _state(name: str) -> Entries:
    model = archcompile.build(_path(name), input=SMALL[name])
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("name", list(TORCHVISION_STATE))
def test_state_dict_is_torchvisions(name: str) -> None:
    expected = TORCHVISION_STATE[name]()
    assert sum(_numel(s) for k, s in expected if _learned(k)) == TORCHVISION_PARAMS[name]
    assert _state(name) == expected


def _learned(key: str) -> bool:
    return key.endswith(("weight", "bias"))


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


@pytest.mark.slow
def test_inception_v3_returns_its_aux_logits_in_training_only() -> None:
    model = archcompile.build(_path("inception_v3"))
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        out = model.train()(x)
        assert out._fields == ("fc", "AuxLogits")
        assert [tuple(t.shape) for t in out] == [(2, 1000), (2, 1000)]
        assert model.eval()(x).shape == (2, 1000)  # the logits alone, as torchvision


def test_inception_v3_aux_loss_weight() -> None:
    outputs = archcompile.load(_path("inception_v3")).graph.outputs
    assert [(o.name, o.training_only, o.loss_weight) for o in outputs] == [
        ("fc", False, 1.0),
        ("AuxLogits", True, 0.4),
    ]
