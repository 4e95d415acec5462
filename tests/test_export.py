"""``archc export``: ONNX checked in onnxruntime, TorchScript loaded back, both
against the torch module; ``archc eval --runtime generated|onnxruntime``; one-line errors."""

from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest
import torch
from conftest import ALL_SPECS, ROOT, spec_id

import archcompile
from archcompile import export as export_module
from archcompile.export import (
    ExportError,
    export,
    export_model,
    flatten,
    load_model,
    main_outputs,
    run_onnx,
)
from archcompile.train.data import DEFAULT_DATA_DIR

SMALL = [
    "tests/specs/tiny_cnn.yaml",
    "tests/specs/three_outputs.yaml",
    "tests/specs/unet_skip.yaml",
    "tests/specs/tokens.yaml",  # archc's own modules, attention among them
]
HAS_DATA = (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists()
needs_data = pytest.mark.skipif(not HAS_DATA, reason="Fashion-MNIST is not installed")


def _inputs(spec, batch: int) -> torch.Tensor:
    return torch.randn(batch, *spec.graph.input, generator=torch.Generator().manual_seed(batch))


def _expected(model, spec, x) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return flatten(model.eval()(x), main_outputs(spec))


@pytest.mark.parametrize("path", [*SMALL, "specs/googlenet.yaml"])
def test_onnx_matches_torch_at_batch_1_and_3(path: str, tmp_path: Path) -> None:
    spec = archcompile.load_spec(path)
    torch.manual_seed(0)
    model = load_model(spec, None)
    result = export_model(model, spec, tmp_path / "model.onnx")
    assert result.max_abs_diff < 1e-4 and result.size == (tmp_path / "model.onnx").stat().st_size
    for batch in (1, 3):
        x = _inputs(spec, batch)
        got = run_onnx(str(tmp_path / "model.onnx"), x)
        want = _expected(model, spec, x)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and torch.allclose(g, w, atol=1e-4, rtol=1e-4)


def test_several_outputs_are_named_and_training_only_ones_dropped(tmp_path: Path) -> None:
    spec = archcompile.load_spec("tests/specs/three_outputs.yaml")
    export(spec, tmp_path / "heads.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "heads.onnx"))
    assert [o.name for o in session.get_outputs()] == ["main", "side_fc"]  # no aux
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape[0] == "batch"


def test_a_mismatch_fails_and_writes_nothing(tmp_path: Path, monkeypatch, cli) -> None:
    def off_by_one(data, x):
        return tuple(t + 1 for t in real(data, x))

    real = export_module.run_onnx
    monkeypatch.setattr(export_module, "run_onnx", off_by_one)
    target = tmp_path / "bad.onnx"
    result = cli("export", "tests/specs/tiny_cnn.yaml", "-o", target)
    assert result.code == 1 and not target.exists()
    assert result.err.count("\n") == 1 and "does not reproduce" in result.err
    assert "nothing written" in result.err
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_cli_reports_file_size_and_difference(cli, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "tiny.onnx"
    result = cli("export", "tests/specs/tiny_cnn.yaml", "-o", target)
    assert result.code == 0, result.err
    size = target.stat().st_size
    assert f"wrote {target} ({size:,} bytes, onnx, outputs: head)" in result.out
    assert "max abs difference" in result.out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--format", "tflite"], 2, "'tflite' is not one of 'onnx', 'torchscript'"),
        (["--source", "magic"], 2, "'magic' is not one of 'live', 'generated'"),
        (["-o", "-"], 2, "-o needs a file name"),
        (["-o", "{tmp}"], 1, "is a directory"),
        (["-o", "{tmp}/file.txt/model.onnx"], 1, "is not a folder"),
        (["-o", "tests/specs/tiny_cnn.yaml"], 1, "is the spec itself"),
        (["--weights", "{tmp}/nowhere"], 1, "no such checkpoint"),
    ],
)
def test_errors_are_one_line(cli, tmp_path: Path, args, code: int, message: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.onnx")]
    result = cli("export", "tests/specs/tiny_cnn.yaml", *args)
    assert result.code == code, result.err
    assert message in result.err and result.err.strip().count("\n") <= 1, result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "out.onnx").exists()


def test_unexportable_layer_is_a_one_line_error(cli, tmp_path: Path) -> None:
    # adaptive_avgpool to 3x2 from 4x4 has no ONNX form in torch's exporter
    result = cli("export", "tests/specs/kitchen_sink.yaml", "-o", tmp_path / "k.onnx")
    assert result.code == 1
    assert "torch.onnx.export failed" in result.err and result.err.count("\n") == 1
    assert result.out == ""  # the exporter's graph dump is muted


@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_torchscript_of_generated_source(path: Path, tmp_path: Path) -> None:
    spec = archcompile.load_spec(path.relative_to(ROOT))
    torch.manual_seed(0)
    model = load_model(spec, None, source="generated")
    export_model(model, spec, tmp_path / "model.pt", "torchscript")
    loaded = torch.jit.load(tmp_path / "model.pt").eval()
    x = _inputs(spec, 2)
    with torch.no_grad():
        got = flatten(loaded(x), main_outputs(spec))
    for g, w in zip(got, _expected(model, spec, x), strict=True):
        assert torch.allclose(g, w, atol=1e-6, rtol=1e-5)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A two-step training run of the tiny spec (real weights, not the init)."""
    from typer.testing import CliRunner

    from archcompile.cli import app

    out = tmp_path_factory.mktemp("run")
    args = ["train", "tests/specs/tiny_cnn.yaml", "--max-steps", "2", "--limit-train", "64"]
    args += ["--limit-test", "32", "--out", str(out), "--lr", "0.5"]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(DEFAULT_DATA_DIR)])
    assert result.exit_code == 0, result.output
    return out


@needs_data
def test_weights_from_a_training_run(run_dir: Path, tmp_path: Path, cli) -> None:
    spec = archcompile.load_spec("tests/specs/tiny_cnn.yaml")
    target = tmp_path / "trained.onnx"
    assert cli("export", spec.display, "--weights", run_dir, "-o", target).code == 0
    trained = load_model(spec, run_dir)
    fresh = load_model(spec, None)
    x = _inputs(spec, 3)
    (got,) = run_onnx(str(target), x)
    assert torch.allclose(got, _expected(trained, spec, x)[0], atol=1e-5)
    assert not torch.allclose(got, _expected(fresh, spec, x)[0], atol=1e-3)


@needs_data
@pytest.mark.parametrize("runtime", ["generated", "onnxruntime"])
def test_eval_through_another_runtime_equals_torch(
    runtime: str, run_dir: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archcompile import export

    made = []  # the runtime's model is really made (not the live module again)
    for name in ("generated_model", "onnxruntime_model"):
        made_by = getattr(export, name)
        monkeypatch.setattr(export, name, lambda *a, f=made_by, n=name: made.append(n) or f(*a))
    common = ["eval", "tests/specs/tiny_cnn.yaml", run_dir, "--limit-test", "50", "--json"]
    torch_run = cli(*common)
    assert made == []
    other = cli(*common, "--runtime", runtime)
    assert torch_run.code == 0 and other.code == 0, other.err
    assert made == [f"{runtime}_model"]
    import json

    a, b = json.loads(torch_run.out), json.loads(other.out)
    assert a["count"] == b["count"] == 50
    assert a["accuracy"] == b["accuracy"] and a["per_class"] == b["per_class"]
    assert abs(a["loss"] - b["loss"]) < 1e-5


def test_eval_rejects_an_unknown_runtime(cli, tmp_path: Path) -> None:
    result = cli("eval", "tests/specs/tiny_cnn.yaml", tmp_path, "--runtime", "tvm")
    assert (
        result.code == 2 and "'tvm' is not one of 'torch', 'generated', 'onnxruntime'" in result.err
    )


def test_export_error_is_an_archc_error() -> None:
    assert issubclass(ExportError, archcompile.ArchcError)


@pytest.mark.parametrize("path", ALL_SPECS, ids=spec_id)
def test_torchscript_of_live_module(path: Path, tmp_path: Path) -> None:
    spec = archcompile.load_spec(path.relative_to(ROOT))
    torch.manual_seed(0)
    model = load_model(spec, None)
    keys = list(model.state_dict())
    export_model(model, spec, tmp_path / "model.pt", "torchscript")
    loaded = torch.jit.load(tmp_path / "model.pt").eval()
    assert list(loaded.state_dict()) == keys  # scripting keeps the live module's keys
    x = _inputs(spec, 2)
    with torch.no_grad():
        got = flatten(loaded(x), main_outputs(spec))
    for g, w in zip(got, _expected(model, spec, x), strict=True):
        assert torch.equal(g, w)


def test_scripted_live_module_keeps_training_only_outputs_in_training_mode() -> None:
    spec = archcompile.load_spec("tests/specs/three_outputs.yaml")
    model = load_model(spec, None)
    scripted = torch.jit.script(model)
    x = _inputs(spec, 2)
    eager_eval, script_eval = model.eval()(x), scripted.eval()(x)
    assert script_eval.aux is None and eager_eval.aux is None
    assert torch.equal(script_eval.side_fc, eager_eval.side_fc)
    scripted.train()
    assert scripted(x).aux.shape == (2, 10)
