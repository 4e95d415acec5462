"""specs/zoo/inception_v1.yaml is torchvision's GoogLeNet, key for key.

The fixture was recorded from a transcription of torchvision's source
(tests/reference/torchvision_googlenet.py); torchvision itself is not needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import ROOT

import archcompile
from archcompile.train.losses import output_loss

ZOO = "specs/zoo/inception_v1.yaml"
FIXTURE = ROOT / "tests" / "fixtures" / "torchvision_googlenet_state_dict.txt"


def _fixture() -> list[tuple[str, str]]:
    lines = FIXTURE.read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def _shape(tensor: torch.Tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


@pytest.fixture(scope="module")
def spec():
    return archcompile.load_spec(ZOO)


def test_parameter_counts_are_torchvisions(spec) -> None:
    tree = archcompile.infer_shapes(spec)
    assert tree.total_params == 13_004_888
    aux = tree.block("aux1").params + tree.block("aux2").params
    assert tree.total_params - aux == 6_624_904
    model = archcompile.build(spec)
    assert sum(p.numel() for p in model.parameters()) == 13_004_888


def test_state_dict_keys_and_shapes_are_torchvisions(spec) -> None:
    state = archcompile.build(spec).state_dict()
    assert [(k, _shape(v)) for k, v in state.items()] == _fixture()


def test_aux_outputs_only_in_training(spec) -> None:
    model = archcompile.build(spec)
    x = torch.randn(2, 3, 224, 224)
    model.train()
    out = model(x)
    assert out._fields == ("fc", "aux2", "aux1")
    assert [tuple(t.shape) for t in out] == [(2, 1000)] * 3
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 1000)  # the main output alone, as torchvision


def test_loss_adds_training_only_outputs_with_their_weights(spec) -> None:
    outputs = archcompile.build(spec)._result(  # the model's named tuple
        torch.randn(4, 10), torch.randn(4, 10), torch.randn(4, 10)
    )
    y = torch.tensor([0, 1, 2, 3])
    loss, main = output_loss(outputs, y, spec.graph.outputs)
    ce = torch.nn.functional.cross_entropy
    expected = ce(outputs.fc, y) + 0.3 * ce(outputs.aux2, y) + 0.3 * ce(outputs.aux1, y)
    assert torch.allclose(loss, expected) and main is outputs.fc


def test_short_training_run_with_aux_losses(cli, tmp_path: Path) -> None:
    result = cli(
        "train",
        ZOO,
        "--set",
        "num_classes=10",
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--limit-train",
        "8",
        "--limit-test",
        "8",
        "--out",
        tmp_path / "run",
    )
    assert result.code == 0, result.err
    assert "final test accuracy" in result.out
