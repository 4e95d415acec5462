"""The committed fixture of torchvision's GoogLeNet state_dict and the
transcription it is recorded from (``tests/reference/torchvision_googlenet.py``)
agree, and the transcription has torchvision's published parameter counts and
forward behaviour. This keeps both honest; archc's own GoogLeNet is compared
with the fixture elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from reference.torchvision_googlenet import GoogLeNet

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "torchvision_googlenet_state_dict.txt"

# torchvision's figures: 6,624,904 is GoogLeNet_Weights.IMAGENET1K_V1's
# num_params (no auxiliary heads); the heads add 2 x 3,189,992.
PARAMS_WITH_AUX = 13_004_888
PARAMS_WITHOUT_AUX = 6_624_904


def _fixture() -> list[tuple[str, str]]:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if not line.startswith("#")]


def _entries(model: torch.nn.Module) -> list[tuple[str, str]]:
    return [
        (key, "x".join(map(str, t.shape)) if t.dim() else "scalar")
        for key, t in model.state_dict().items()
    ]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def model() -> GoogLeNet:
    torch.manual_seed(0)
    return GoogLeNet(aux_logits=True, init_weights=False)


def test_the_fixture_is_the_transcriptions_state_dict(model: GoogLeNet) -> None:
    fixture = _fixture()
    assert _entries(model) == fixture  # keys, order and shapes
    assert len(fixture) == 364
    tops = list(dict.fromkeys(key.split(".")[0] for key, _ in fixture))
    assert tops == [
        "conv1", "conv2", "conv3",
        "inception3a", "inception3b",
        "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
        "inception5a", "inception5b",
        "aux1", "aux2", "fc",
    ]  # fmt: skip


def test_the_fixture_is_what_the_recorder_writes(model: GoogLeNet) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from record_torchvision_googlenet import fixture_text
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert fixture_text(model) == FIXTURE.read_text(encoding="utf-8")


def test_parameter_counts_are_torchvisions(model: GoogLeNet) -> None:
    assert _params(model) == PARAMS_WITH_AUX
    assert _params(GoogLeNet(aux_logits=False, init_weights=False)) == PARAMS_WITHOUT_AUX


def test_forward_in_train_and_eval_mode(model: GoogLeNet) -> None:
    x = torch.randn(2, 3, 224, 224)
    heads = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _module, _args, output, name=name: heads.__setitem__(name, output)
        )
        for name in ("aux1", "aux2")
    ]
    model.train()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    assert isinstance(out, tuple) and len(out) == 3
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert [tuple(t.shape) for t in out] == [(2, 1000)] * 3
    # upstream's quirk, kept: the head on inception4a (aux1) fills aux_logits2
    assert out.aux_logits2 is heads["aux1"] and out.aux_logits1 is heads["aux2"]

    model.eval()
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 1000)


def test_transform_input_renormalises_each_channel() -> None:
    model = GoogLeNet(aux_logits=False, transform_input=True, init_weights=False)
    x = torch.zeros(1, 3, 2, 2)
    expected = torch.tensor([(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5])
    torch.testing.assert_close(model._transform_input(x)[0, :, 0, 0], expected)
