"""Weights in: ``archc import-weights`` (by name, by order and shape, refusing
any doubt) and ``archc train --init-from`` (a new head re-initialized)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT
from safetensors.torch import save_file

import archcompile
from archcompile import weights
from archcompile.errors import CheckpointError
from archcompile.train import checkpoint

TINY = "tests/specs/tiny_cnn.yaml"
ZOO = "specs/zoo/inception_v1.yaml"


def _pretrained(spec, seed: int, **kwargs) -> torch.nn.Module:
    """A model with weights unlike a fresh one's, BatchNorm statistics included."""
    torch.manual_seed(seed)
    model = archcompile.build(spec, **kwargs)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.normal_()
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
    return model.eval()


def _renamed(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict of a hand-written model: same order and shapes, other names."""
    return {f"net.layer{i}": v for i, v in enumerate(model.state_dict().values())}


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, shape: tuple[int, ...]) -> bool:
    x = torch.randn(*shape)
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_renamed_keys_import_by_order(cli, tmp_path: Path) -> None:
    source = _pretrained(TINY, seed=1)
    torch.save(_renamed(source), tmp_path / "hand.pt")
    result = cli("import-weights", TINY, tmp_path / "hand.pt", "-o", tmp_path / "run")
    assert result.code == 0, result.err
    assert "6 tensors, matched by order" in result.out
    assert "│ net.layer0 │ features.0.weight │ 8x1x3x3" in result.out
    assert "│ net.layer5 │ head.1.bias       │ 10 " in result.out
    imported = archcompile.build(TINY, weights=tmp_path / "run")
    assert _same_outputs(imported, source, (4, 1, 28, 28))
    assert not _same_outputs(archcompile.build(TINY), source, (4, 1, 28, 28))
    meta = checkpoint.load(tmp_path / "run").meta
    assert meta["imported"]["by"] == "order" and meta["step"] == 0
    assert meta["spec"]["sha256"] == archcompile.load(TINY).sha256


def test_an_imported_run_evaluates(cli, tmp_path: Path) -> None:
    torch.save(_renamed(_pretrained(TINY, seed=1)), tmp_path / "hand.pt")
    assert cli("import-weights", TINY, tmp_path / "hand.pt", "-o", tmp_path / "run").code == 0
    result = cli("eval", TINY, tmp_path / "run", "--limit-test", "32", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["count"] == 32


def test_inception_state_dict_imports_by_name(cli, tmp_path: Path) -> None:
    """torchvision's GoogLeNet keys are the zoo spec's: imported name for name."""
    source = _pretrained(ZOO, seed=2, set={"num_classes": 10})
    save_file(source.state_dict(), tmp_path / "googlenet.safetensors")
    result = cli(
        "import-weights", ZOO, tmp_path / "googlenet.safetensors", "-o", tmp_path / "run",
        "--set", "num_classes=10",
    )  # fmt: skip
    assert result.code == 0, result.err
    count = len(source.state_dict())
    assert f"{count} tensors, matched by name" in result.out
    assert "│ conv1.conv.weight" in result.out and "│ aux1.fc2.bias" in result.out
    imported = archcompile.build(ZOO, set={"num_classes": 10}, weights=tmp_path / "run")
    assert _same_outputs(imported, source, (2, 3, 224, 224))


def test_names_decide_over_order(tmp_path: Path) -> None:
    model = _pretrained(TINY, seed=3)
    state = model.state_dict()
    shuffled = {k: state[k] for k in reversed(state)}
    mapping = weights.plan_import(shuffled, state, "x.pt")
    assert mapping.method == "name"
    assert [(s, t) for s, t, _ in mapping.pairs] == [(k, k) for k in state]


def _tiny_state(num_classes: int = 10) -> dict[str, torch.Tensor]:
    return archcompile.build(TINY, set={"num_classes": num_classes}).state_dict()


def _with(state: dict[str, torch.Tensor], **changes) -> dict[str, torch.Tensor]:
    return {**state, **changes}


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (
            lambda s: _with(s, **{"head.1.weight": torch.zeros(5, 784)}),
            "1 differ in shape (first: head.1.weight [5, 784], the model's [10, 784])",
        ),
        (
            lambda s: {k: v for k, v in s.items() if k != "features.3.bias"},
            "5 tensors for a model of 6: names differ (first missing: features.3.bias)",
        ),
        (
            lambda s: _with(s, extra=torch.zeros(1)),
            "7 tensors for a model of 6: names differ (first extra: extra)",
        ),
        (
            lambda s: {f"k{i}": v for i, v in enumerate(reversed(s.values()))},
            "tensor 0 is k0 [10], the model's is features.0.weight [8, 1, 3, 3]",
        ),
        (
            lambda s: {
                ("features.0.bias" if i == 3 else f"k{i}"): v for i, v in enumerate(s.values())
            },
            "ambiguous: features.0.bias names a model tensor, but by order it is features.3.bias",
        ),
    ],
)
def test_doubtful_mappings_are_refused(make_source, message: str) -> None:
    state = _tiny_state()
    with pytest.raises(CheckpointError) as info:
        weights.plan_import(make_source(state), state, "w.pt")
    assert message in str(info.value)
    assert info.value.first.hint


def test_safetensors_keeps_no_order_to_import_by(cli, tmp_path: Path) -> None:
    save_file(_renamed(_pretrained(TINY, seed=1)), tmp_path / "hand.safetensors")
    result = cli("import-weights", TINY, tmp_path / "hand.safetensors", "-o", tmp_path / "run")
    assert result.code == 1
    assert result.err.startswith(
        f"{tmp_path / 'hand.safetensors'}: error: names differ (first missing: features.0.weight)"
        " and a .safetensors file keeps no order"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.pt", None, "no such file"),
        ("folder", "dir", "is a directory, not a state_dict file"),
        ("w.npz", b"x", "unknown weights file type '.npz'"),
        ("bad.safetensors", b"not safetensors", "corrupt safetensors file"),
        ("bad.pt", b"not a pickle", "cannot read as a weights-only torch file"),
        ("list.pt", [torch.zeros(1)], "not a state_dict (a mapping of names to tensors)"),
        ("code.pt", {"a": Path("x")}, "cannot read as a weights-only torch file"),
    ],
)
def test_bad_weight_files(cli, tmp_path: Path, name: str, content, message: str) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    result = cli("import-weights", TINY, path, "-o", tmp_path / "run")
    assert result.code == 1
    assert result.err.startswith(f"{path}: error: {message}")
    assert "internal error" not in result.err


def test_import_refuses_an_existing_run_and_mismatches(cli, tmp_path: Path) -> None:
    save_file(_tiny_state(), tmp_path / "w.safetensors")
    assert cli("import-weights", TINY, tmp_path / "w.safetensors", "-o", tmp_path / "a").code == 0
    again = cli("import-weights", TINY, tmp_path / "w.safetensors", "-o", tmp_path / "a")
    assert again.code == 1 and "already holds a checkpoint" in again.err
    other = cli(
        "import-weights", TINY, tmp_path / "w.safetensors", "-o", tmp_path / "b",
        "--set", "num_classes=5",
    )  # fmt: skip
    assert other.code == 1
    assert "2 differ in shape (first: head.1.weight [10, 784], the model's [5, 784])" in other.err
    assert "hint: check the spec and its --set parameters" in other.err


def test_init_from_reinitializes_a_new_head_and_trains(cli, tmp_path: Path) -> None:
    source = _pretrained(TINY, seed=4, set={"num_classes": 5})
    torch.save(source.state_dict(), tmp_path / "five.pt")
    imported = cli(
        "import-weights", TINY, tmp_path / "five.pt", "-o", tmp_path / "five",
        "--set", "num_classes=5",
    )  # fmt: skip
    assert imported.code == 0, imported.err
    result = cli(
        "train", TINY, "--init-from", tmp_path / "five", "--out", tmp_path / "ft",
        "--limit-train", "64", "--limit-test", "64", "--batch-size", "32", "--max-steps", "2",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert f"initialized from {tmp_path / 'five'}: 4 tensors loaded" in result.out
    assert (
        "re-initialized for the new number of classes: head.1.weight [10, 784], head.1.bias [10]"
        in result.out
    )
    assert checkpoint.load(tmp_path / "ft").step == 2


def test_init_from_loads_every_matching_tensor(tmp_path: Path) -> None:
    source = _pretrained(TINY, seed=5, set={"num_classes": 5})
    spec = archcompile.load(TINY, set={"num_classes": 5})
    weights.write_run(tmp_path / "run", spec, source.state_dict(), {"test": True})
    torch.manual_seed(0)
    model = archcompile.build(TINY)
    fresh_head = model.state_dict()["head.1.weight"].clone()
    fresh = weights.init_from(model, tmp_path / "run", weights.head_sizes(archcompile.load(TINY)))
    assert fresh == ["head.1.weight", "head.1.bias"]
    state = model.state_dict()
    for key in ("features.0.weight", "features.0.bias", "features.3.weight"):
        assert torch.equal(state[key], source.state_dict()[key])
    assert torch.equal(state["head.1.weight"], fresh_head)


def test_init_from_refuses_other_mismatches(cli, tmp_path: Path) -> None:
    narrow = yaml.safe_load((ROOT / TINY).read_text())
    narrow["blocks"]["features"][0]["conv"]["out"] = 4
    spec = archcompile.load(narrow)
    weights.write_run(tmp_path / "run", spec, archcompile.build(spec).state_dict(), {})
    result = cli(
        "train", TINY, "--init-from", tmp_path / "run", "--out", tmp_path / "ft",
        "--limit-train", "64", "--max-steps", "1",
    )  # fmt: skip
    assert result.code == 1
    assert "differ in shape (first: features.0.weight [4, 1, 3, 3], the model's [8, 1, 3, 3])" in (
        result.err
    )
    both = cli("train", TINY, "--init-from", tmp_path / "run", "--resume", "--out", tmp_path)
    assert both.code == 2 and "give --resume or --init-from, not both" in both.err


def test_eval_of_a_run_for_another_class_count_is_one_line(cli, tmp_path: Path) -> None:
    """An imported run with 5 classes evaluated on Fashion-MNIST (10 classes)
    used to end in an internal error (IndexError); now one located line."""
    save_file(_tiny_state(num_classes=5), tmp_path / "w.safetensors")
    imported = cli(
        "import-weights", TINY, tmp_path / "w.safetensors", "-o", tmp_path / "r",
        "--set", "num_classes=5",
    )  # fmt: skip
    assert imported.code == 0, imported.err
    result = cli("eval", TINY, tmp_path / "r", "--set", "num_classes=5", "--limit-test", "8")
    assert result.code == 1
    assert "outputs [N, 5]; Fashion-MNIST needs [N, 10] class scores" in result.err
