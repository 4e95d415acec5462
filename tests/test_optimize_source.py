"""``archc build --optimize``: the generated source calls sibling 1x1 convs
through ``fused_1x1`` and stays interchangeable with the plain build (same
state_dict keys, outputs equal within 1e-4 of their scale, trains)."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

import archcompile
from archcompile.passes import select
from tests.conftest import ROOT, assert_ruff_accepts

SPECS = ["specs/googlenet.yaml", "specs/googlenet_bn.yaml"]


def _module_of(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses and TorchScript look classes up here
    exec(compile(source, f"<{name}>", "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    return module


@pytest.mark.parametrize("spec", SPECS)
def test_optimized_source_fuses_and_loads_plain_weights(spec, tmp_path) -> None:
    source = archcompile.generate_source(ROOT / spec, optimize=True)
    assert source.count("= fused_1x1(") == 1  # once, in the Inception class
    assert "def fused_1x1(" in source
    path = tmp_path / "optimized.py"
    path.write_text(source)
    assert_ruff_accepts(path)

    torch.manual_seed(0)
    plain = archcompile.build(ROOT / spec).eval()
    model = _module_of(source, f"optimized_{path.stem}").GoogLeNet()
    model.load_state_dict(plain.state_dict(), strict=True)
    model.eval()
    x = torch.randn(1, 1, 96, 96)
    with torch.no_grad():
        expected, actual = plain(x), model(x)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * expected.abs().max())
    model.train()
    model(torch.randn(2, 1, 96, 96)).sum().backward()  # in-place ReLUs on the split output
    assert model.block3[0].branch1[0].weight.grad is not None


def test_plain_source_has_no_fused_helper() -> None:
    assert "fused_1x1" not in archcompile.generate_source(ROOT / "specs" / "googlenet.yaml")


def test_cli_build_optimize_and_export_refusal(cli, tmp_path) -> None:
    result = cli("build", "specs/googlenet.yaml", "--optimize", "-o", "-")
    assert result.code == 0 and "fused_1x1(" in result.out
    result = cli("build", "specs/googlenet.yaml", "--passes", "fold_bn", "-o", "-")
    assert result.code == 0 and "fused_1x1" not in result.out
    result = cli("build", "specs/googlenet.yaml", "--passes", "nope", "-o", "-")
    assert result.code == 2 and "unknown optimization pass 'nope'" in result.err
    out = tmp_path / "m.pt"
    result = cli(
        "export", "specs/googlenet.yaml", "--optimize", "--format", "torchscript", "-o", out
    )
    assert result.code == 2 and "ONNX only" in result.err


def test_cli_train_and_eval_with_optimize(cli, tmp_path) -> None:
    run = tmp_path / "run"
    args = ["--max-steps", "2", "--batch-size", "32", "--limit-train", "64", "--limit-test", "32"]
    result = cli("train", "tests/specs/tiny_cnn.yaml", *args, "--optimize", "--out", run)
    assert result.code == 0, result.err
    saved = (run / "LATEST").read_text().strip()
    config = json.loads((run / saved / "checkpoint.json").read_text())["config"]
    assert config["optimize"] == list(select(True))
    result = cli("eval", "tests/specs/tiny_cnn.yaml", run, "--limit-test", "32", "--optimize")
    assert result.code == 0 and "accuracy" in result.out
