"""The Python API: every form of spec, typed parameters, and every bad input
an ArchcError (never a bare Python error); docs/python-api.md runs as a doctest."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT
from safetensors.torch import save_file

import archcompile
from archcompile.errors import ArchcError, CheckpointError, ShapeError, SpecError, UsageError

TINY = "tests/specs/tiny_cnn.yaml"
TINY_TEXT = (ROOT / TINY).read_text()


def _forms() -> dict[str, object]:
    return {
        "str path": TINY,
        "Path": Path(TINY),
        "absolute Path": ROOT / TINY,
        "YAML text": TINY_TEXT,
        "one-line flow mapping": yaml.safe_dump(
            yaml.safe_load(TINY_TEXT), default_flow_style=True, width=10**6
        ).strip(),
        "dict": yaml.safe_load(TINY_TEXT),
        "Spec": archcompile.load_spec(TINY),
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_form_gives_the_same_network(form: str) -> None:
    spec = _forms()[form]
    expected = archcompile.load_spec(TINY)
    report = archcompile.shapes(spec)
    assert report.block("head").shape == (10,)
    assert report.total_params == expected.tree().total_params
    assert archcompile.load(spec).sha256 == expected.sha256
    model = archcompile.build(spec)
    assert sum(p.numel() for p in model.parameters()) == report.total_params
    source = archcompile.generate_source(spec)
    assert "class TinyCNN(nn.Module):" in source
    assert source.split("\n", 4)[4] == archcompile.generate_source(expected).split("\n", 4)[4]


@pytest.mark.parametrize("form", list(_forms()))
def test_typed_overrides_in_every_form(form: str) -> None:
    spec = _forms()[form]
    assert archcompile.shapes(spec, set={"num_classes": 7}).block("head").shape == (7,)
    model = archcompile.build(spec, set={"num_classes": 3}).eval()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    assert "num_classes: int = 5)" in archcompile.generate_source(spec, set={"num_classes": 5})


def test_typed_override_equals_the_cli_override() -> None:
    typed = archcompile.load(TINY, set={"num_classes": 7})
    text = archcompile.load_spec(TINY, {"num_classes": "7"})
    assert typed.sha256 == text.sha256 and typed.document == text.document


def test_a_loaded_spec_is_not_changed_by_overrides() -> None:
    spec = archcompile.load(TINY)
    assert archcompile.load(spec) is spec
    other = archcompile.load(spec, set={"num_classes": 4})
    assert spec.document["params"] == {"num_classes": 10}
    assert other.document["params"] == {"num_classes": 4}
    with pytest.raises(SpecError):  # the new value is checked, marked as set=
        archcompile.load(spec, set={"num_classes": 0})
    assert archcompile.shapes(spec).block("head").shape == (10,)


def test_string_values_are_not_read_as_yaml() -> None:
    with pytest.raises(SpecError) as info:
        archcompile.shapes(TINY, set={"num_classes": "10"})
    assert str(info.value).startswith(
        "set={'num_classes': '10'}: error: a channel count must be an integer, got a string '10'"
        " (at params.num_classes)"
    )
    assert "(tests/specs/tiny_cnn.yaml:18)" in str(info.value)


def test_input_shape() -> None:
    assert archcompile.shapes(TINY, input=(1, 32, 32)).block("features").shape == (16, 8, 8)
    assert archcompile.shapes(TINY, input=[1, 32, 32]).input == (1, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"set": {"num_clases": 3}}, UsageError, "the spec has no parameter 'num_clases'"),
        ({"set": {"num_classes": [1]}}, UsageError, "must be a number, boolean or string"),
        ({"set": {"num_classes": None}}, UsageError, "must be a number, boolean or string"),
        ({"set": {"num_classes": float("nan")}}, UsageError, "must be a finite number"),
        ({"set": {1: 3}}, UsageError, "parameter names are strings"),
        ({"set": [("num_classes", 3)]}, UsageError, "set= takes a dict of parameters, not list"),
        ({"set": {"num_classes": 0}}, SpecError, "a channel count must be at least 1, got 0"),
        ({"set": {"num_classes": True}}, SpecError, "got a boolean"),
        ({"set": {"num_classes": 2.5}}, SpecError, "got a float 2.5"),
        ({"input": (1, 28)}, UsageError, "input= takes (channels, height, width)"),
        ({"input": (1, 0, 28)}, UsageError, "input= takes"),
        ({"input": "1x28x28"}, UsageError, "input= takes"),
        ({"input": (1, 2, 2)}, ShapeError, "larger than the padded input"),
    ],
)
def test_bad_arguments_raise_archc_errors(kwargs: dict, error: type, message: str) -> None:
    for function in (archcompile.shapes, archcompile.build, archcompile.generate_source):
        with pytest.raises(error) as info:
            function(TINY, **kwargs)
        assert message in str(info.value)


def test_unknown_parameter_suggests_the_nearest() -> None:
    with pytest.raises(UsageError) as info:
        archcompile.build(TINY, set={"num_clases": 3})
    assert info.value.first.format() == (
        "archc: error: set={'num_clases': ...}: the spec has no parameter 'num_clases'\n"
        "  hint: did you mean 'num_classes'?"
    )


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (42, UsageError, "a spec is a Spec, a path, YAML text or a dict, not int"),
        (b"archc: 1", UsageError, "not bytes"),
        (None, UsageError, "not NoneType"),
        (["archc", 1], UsageError, "not list"),
        ("specs/missing.yaml", SpecError, "specs/missing.yaml: error: no such file"),
        (Path("specs/missing.yaml"), SpecError, "no such file"),
        ("specs", SpecError, "is a directory, not a spec file"),
        ("archc: 1\nname: [", SpecError, "<spec>:2:"),
        ("- 1\n- 2\n", SpecError, "a spec is a mapping of keys"),
        ({}, SpecError, "<dict>: error: missing required key 'archc'"),
        ({"archc": 1, "nme": "X"}, SpecError, "unknown key 'nme'"),
        ({1: 2}, SpecError, "mapping key '1' is not a name"),
        ({"archc": 1, "name": object()}, SpecError, "plain data only"),
        ({"archc": 1, "name": float("inf")}, SpecError, "is not a finite number"),
    ],
)
def test_bad_specs_raise_archc_errors(spec: object, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        archcompile.shapes(spec)
    assert message in str(info.value)


def test_a_dict_is_located_by_path_without_lines() -> None:
    data = yaml.safe_load(TINY_TEXT)
    data["blocks"]["features"][0]["conv"]["out"] = "eight"
    with pytest.raises(SpecError) as info:
        archcompile.build(data)
    assert info.value.first.format() == (
        "<dict>: error: a channel count must be an integer, got a string 'eight'"
        " (at blocks.features[0].conv.out)"
    )


def test_a_recursive_dict_is_refused() -> None:
    data = yaml.safe_load(TINY_TEXT)
    data["blocks"]["features"].append(data["blocks"]["features"])
    with pytest.raises(SpecError, match="refers to a collection that contains it"):
        archcompile.shapes(data)


def test_a_dict_may_extend_a_file() -> None:
    spec = {"extends": TINY, "params": {"num_classes": 4}}
    assert archcompile.shapes(spec).block("head").shape == (4,)


def test_weights_load_strictly(tmp_path: Path) -> None:
    model = archcompile.build(TINY).eval()
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    torch.save(model.state_dict(), tmp_path / "w.pt")
    x = torch.randn(3, 1, 28, 28)
    for name in ("w.safetensors", "w.pt"):
        loaded = archcompile.build(TINY, weights=tmp_path / name).eval()
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(CheckpointError, match=r"2 differ in shape \(first: head.1.weight"):
        archcompile.build(TINY, set={"num_classes": 3}, weights=tmp_path / "w.pt")
    renamed = {"net." + k: v for k, v in model.state_dict().items()}
    save_file(renamed, tmp_path / "renamed.safetensors")
    with pytest.raises(CheckpointError, match="6 missing .first: features.0.weight.; 6 extra"):
        archcompile.build(TINY, weights=tmp_path / "renamed.safetensors")
    with pytest.raises(CheckpointError, match="no such file"):
        archcompile.build(TINY, weights=tmp_path / "missing.safetensors")
    with pytest.raises(UsageError, match="weights= takes a path"):
        archcompile.build(TINY, weights=model.state_dict())


def test_the_old_names_still_work() -> None:
    spec = archcompile.load_spec(TINY)
    assert archcompile.infer_shapes(spec).block("head").shape == (10,)
    assert archcompile.infer_shapes is archcompile.shapes
    assert isinstance(archcompile.build(spec), torch.nn.Module)


def test_shapes_is_the_function_and_its_module_still_imports() -> None:
    from archcompile.shapes import SHAPE_RULES

    assert callable(archcompile.shapes) and "conv" in SHAPE_RULES


def test_every_error_is_an_archc_error() -> None:
    assert all(issubclass(e, ArchcError) for e in (UsageError, SpecError, CheckpointError))


def test_docs_examples_run() -> None:
    """docs/python-api.md shows what the API returns and prints."""
    result = doctest.testfile(
        str(ROOT / "docs" / "python-api.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS,
        raise_on_error=False,
        verbose=False,
    )
    assert result.attempted > 20
    assert result.failed == 0
