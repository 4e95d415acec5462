"""The token models of the zoo: ViT-B/16, ConvNeXt-T, Swin-T and Mixer-S/16.

Parameter counts are torchvision's published figures (Mixer-S/16: a model
written by hand from the paper, tests/reference/mlp_mixer.py); torchvision
itself is not needed. Shapes against forward hooks, MACs against fvcore and
live against generated modules are checked for every spec by
test_torch_build.py and test_codegen.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

import archcompile

sys.path.insert(0, str(ROOT / "tests" / "reference"))
from mlp_mixer import MlpMixer

COUNTS = {
    "specs/zoo/vit_b_16.yaml": 86_567_656,  # torchvision.models.vit_b_16
    "specs/zoo/convnext_tiny.yaml": 28_589_128,  # torchvision.models.convnext_tiny
    "specs/zoo/mlp_mixer_s16.yaml": 18_528_264,  # tests/reference/mlp_mixer.py
    "specs/zoo/swin_t.yaml": 28_288_354,  # torchvision.models.swin_t
}

#: MACs per image as torchvision publishes them (GFLOPS, counted as MACs)
TORCHVISION_GMACS = {
    "specs/zoo/vit_b_16.yaml": 17.56,
    "specs/zoo/convnext_tiny.yaml": 4.46,
    "specs/zoo/swin_t.yaml": 4.49,
}


@pytest.mark.parametrize("path", sorted(COUNTS))
def test_parameter_counts_are_exact(path: str) -> None:
    spec = archcompile.load_spec(path)
    assert archcompile.infer_shapes(spec).total_params == COUNTS[path]
    model = archcompile.build(spec)
    assert sum(p.numel() for p in model.parameters()) == COUNTS[path]


@pytest.mark.parametrize("path", sorted(TORCHVISION_GMACS))
def test_macs_are_torchvisions_published_figures(path: str) -> None:
    macs = archcompile.infer_shapes(archcompile.load_spec(path)).macs_per_image
    assert round(macs / 1e9, 2) == TORCHVISION_GMACS[path]


def test_shapes_run_without_torch() -> None:
    """``archc shapes`` on the token models imports no torch."""
    script = f"""
import importlib.abc, json, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch must not be imported")
sys.meta_path.insert(0, NoTorch())
from archcompile.cli import run
for path in {sorted(COUNTS)!r}:
    sys.argv = ["archc", "shapes", path, "--json"]
    try:
        run()
    except SystemExit as exit:
        assert not exit.code, exit.code
assert not any(m.split(".")[0] == "torch" for m in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    totals = [json.loads(doc)["total_params"] for doc in _json_documents(result.stdout)]
    assert totals == [COUNTS[p] for p in sorted(COUNTS)]


def _json_documents(text: str) -> list[str]:
    decoder, docs, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        _, end = decoder.raw_decode(text, index)
        docs.append(text[index:end])
        index = end
    return docs


@pytest.mark.slow
def test_mixer_equals_the_hand_written_reference() -> None:
    """Same parameters in the same order; with the reference's weights copied
    over, the same outputs."""
    spec = archcompile.load_spec("specs/zoo/mlp_mixer_s16.yaml")
    live = archcompile.build(spec).eval()
    reference = MlpMixer().eval()
    ours, theirs = list(live.state_dict().values()), list(reference.state_dict().values())
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    live.load_state_dict(dict(zip(live.state_dict(), theirs)), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(live(x), reference(x), rtol=1e-4, atol=1e-5)


def test_blocks_are_written_in_the_standard_library() -> None:
    """The three blocks are YAML definitions of the standard library, not Python."""
    text = (ROOT / "archcompile" / "stdlib" / "blocks.yaml").read_text()
    for kind in ("transformer_block", "mixer_block", "convnext_block", "swin_block"):
        assert f"\n  {kind}:\n" in text


@pytest.mark.slow
def test_small_vit_trains_on_fashion_mnist(cli, tmp_path) -> None:
    """specs/vit_tiny_fmnist.yaml goes through archc train (a few steps)."""
    args = ["--max-steps", "3", "--batch-size", "8", "--limit-train", "32", "--limit-test", "16"]
    result = cli("train", "specs/vit_tiny_fmnist.yaml", *args, "--out", tmp_path / "run")
    assert result.code == 0, result.err
    assert "final test accuracy" in result.out
