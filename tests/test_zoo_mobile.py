"""The mobile networks of specs/zoo/ (and a U-Net) against their published
parameter counts and hand-written PyTorch references.

The counts are torchvision's published figures (the ``num_params`` of each
model's ``IMAGENET1K_V1`` weights in the torchvision 0.2x documentation);
torchvision itself is never imported. Forward comparisons run at a small
input (3x64x64) to stay fast on a CPU.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, assert_ruff_accepts

import archcompile

#: spec -> parameter count. torchvision 0.2x docs (num_params of the
#: IMAGENET1K_V1 weights) for the torchvision ports; the U-Net's is the
#: hand-written reference's (tests/reference/unet.py), checked below.
COUNTS = {
    "specs/zoo/mobilenet_v2.yaml": 3_504_872,
}
SMALL = (3, 64, 64)


def _module(source: str, tmp_path: Path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _copy_by_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Load ``source``'s state into ``target`` entry by entry (the keys differ,
    the order and shapes must not)."""
    values = list(source.state_dict().values())
    keys = list(target.state_dict())
    assert len(values) == len(keys)
    state = {}
    for key, value in zip(keys, values, strict=True):
        assert target.state_dict()[key].shape == value.shape, key
        state[key] = value
    target.load_state_dict(state, strict=True)


def test_counts_without_torch() -> None:
    """``archc shapes --json`` gives every count in pure Python."""
    code = (
        "import contextlib, io, json, sys\n"
        "from archcompile.cli import run\n"
        "counts = {}\n"
        f"for path in {list(COUNTS)!r}:\n"
        "    sys.argv = ['archc', 'shapes', path, '--json']\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n            run()\n"
        "        except SystemExit as e:\n            assert not e.code, e.code\n"
        "    counts[path] = json.loads(out.getvalue())['total_params']\n"
        "assert 'torch' not in sys.modules\n"
        "print(json.dumps(counts))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == COUNTS


@pytest.mark.parametrize("path", list(COUNTS))
def test_live_module_has_the_count(path: str) -> None:
    assert archcompile.shapes(path).total_params == COUNTS[path]
    assert _params(archcompile.build(path)) == COUNTS[path]


@pytest.mark.parametrize("path", list(COUNTS))
def test_static_shapes_are_the_forward_shapes(path: str) -> None:
    spec = archcompile.load(path, input=SMALL)
    report = archcompile.shapes(spec)
    model = archcompile.build(spec).eval()
    seen: dict[str, tuple[int, ...]] = {}
    for record in report.blocks:
        getattr(model, record.name).register_forward_hook(
            lambda _m, _i, out, name=record.name: seen.__setitem__(name, tuple(out.shape))
        )
    with torch.no_grad():
        model(torch.randn(2, *SMALL))
    assert seen == {r.name: (2, *r.shape) for r in report.blocks}


@pytest.mark.parametrize("path", list(COUNTS))
def test_generated_source_is_the_live_module(path: str, tmp_path: Path) -> None:
    spec = archcompile.load(path, input=SMALL)
    module, file = _module(archcompile.generate_source(spec), tmp_path, Path(path).stem)
    assert_ruff_accepts(file)
    generated = getattr(module, spec.name)().eval()
    live = archcompile.build(spec).eval()
    assert list(generated.state_dict()) == list(live.state_dict())
    live.load_state_dict(generated.state_dict(), strict=True)
    x = torch.randn(2, *SMALL)
    with torch.no_grad():
        assert torch.equal(generated(x), live(x))


# -- MobileNet v2's width multiplier ----------------------------------------


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_mobilenet_v2_width_is_torchvisions_width_mult(width: float) -> None:
    """``--set width=W`` scales what torchvision's ``width_mult`` scales: the
    same count, and with the same weights the same outputs, as the hand-written
    reference."""
    from reference.torchvision_mobilenet_v2 import MobileNetV2

    reference = MobileNetV2(width_mult=width).eval()
    spec = archcompile.load("specs/zoo/mobilenet_v2.yaml", set={"width": width}, input=SMALL)
    assert archcompile.shapes(spec).total_params == _params(reference)
    live = archcompile.build(spec).eval()
    _copy_by_order(reference, live)
    x = torch.randn(2, *SMALL)
    with torch.no_grad():
        assert torch.allclose(live(x), reference(x), atol=1e-5)


def test_mobilenet_v2_width_counts() -> None:
    # torchvision's figures: 3,504,872 at width_mult=1.0; 1,968,680 at 0.5
    counts = {
        w: archcompile.shapes("specs/zoo/mobilenet_v2.yaml", set={"width": w}).total_params
        for w in (1.0, 0.5)
    }
    assert counts == {1.0: 3_504_872, 0.5: 1_968_680}
