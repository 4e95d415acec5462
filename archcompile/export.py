"""``archc export``: a spec's model as an ONNX or TorchScript file, verified.

The exported file is checked before it is written: it is loaded back (ONNX in
onnxruntime, TorchScript with ``torch.jit.load``) and run on a random batch of
another size than the one it was traced with, and its outputs are compared
with the torch module's. A file that does not reproduce the model is never
written, so a file on disk is one that was checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import linecache
import os
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from archcompile import files
from archcompile.backends.codegen import generate
from archcompile.backends.torch_build import build_tree, check_size
from archcompile.errors import ArchcError, Diagnostic, OutputError, UsageError
from archcompile.limits import DEFAULT_LIMITS
from archcompile.spec import Spec

FORMATS = ("onnx", "torchscript")
SOURCES = ("live", "generated")
#: ONNX opset: 17 has every operator the layer registry lowers to (LRN, exact
#: GELU through Erf, ceil-mode pooling, BatchNormalization, Gemm)
OPSET = 17
#: largest accepted difference, relative to the largest output magnitude
TOLERANCE = 1e-4
#: batch sizes of the trace and of the check (different: the batch is dynamic)
TRACE_BATCH, CHECK_BATCH = 2, 3


class ExportError(ArchcError):
    """The model cannot be exported, or the exported file does not reproduce it."""


@dataclass
class Exported:
    """What ``archc export`` wrote and how well the file matched the model."""

    path: Path
    format: str
    size: int
    max_abs_diff: float
    outputs: tuple[str, ...]


def main_outputs(spec: Spec) -> tuple[str, ...]:
    """The outputs an exported model returns: those not computed in training only."""
    return tuple(o.name for o in spec.graph.outputs if not o.training_only)


class _Outputs(nn.Module):
    """The model in eval mode, its main outputs as a flat tuple (what ONNX takes)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return flatten(self.model(x), self.names)


def flatten(result: object, names: tuple[str, ...]) -> tuple[Tensor, ...]:
    """A model's result as a tuple of its main outputs, in spec order."""
    if isinstance(result, Tensor):
        return (result,)
    return tuple(getattr(result, name) for name in names)


def generated_model(spec: Spec) -> nn.Module:
    """An instance of the generated source's model class. TorchScript reads a
    function's source through ``inspect``, so the source goes into
    ``linecache`` (as an entry without a file, which is never evicted) and the
    module into ``sys.modules`` (NamedTuple outputs are resolved through it)."""
    source = generate(spec)
    # one module name per source: TorchScript caches classes by qualified name
    name = f"archc_generated_{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    filename = f"<archc build {spec.display}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    # dont_inherit: not this file's `from __future__ import annotations` (TorchScript
    # would then see NamedTuple fields as strings)
    code = compile(source, filename, "exec", dont_inherit=True)
    exec(code, module.__dict__)  # noqa: S102 (our own generated source)
    return getattr(module, spec.graph.name)()


def fresh_model(spec: Spec, source: str, max_params: int = DEFAULT_LIMITS.max_params) -> nn.Module:
    """A model of ``spec`` with its initial weights: the live module (``live``)
    or the generated source's class (``generated``), both held to ``max_params``."""
    tree = spec.tree()
    if source == "live":
        return build_tree(tree, max_params)
    check_size(tree, max_params)
    return generated_model(spec)


def load_model(
    spec: Spec,
    weights: Path | None,
    source: str = "live",
    max_params: int = DEFAULT_LIMITS.max_params,
    passes: tuple[str, ...] = (),
) -> nn.Module:
    """The model to export, in eval mode, with a run's weights when given."""
    if source not in SOURCES:
        raise UsageError(f"unknown --source {source!r}; choose one of: {', '.join(SOURCES)}")
    model = fresh_model(spec, source, max_params)
    if weights is not None:
        from archcompile.train import checkpoint

        saved = checkpoint.load(weights, with_state=False)
        checkpoint.check_fits(saved, model, spec.sha256, spec.display)
        model.load_state_dict(saved.model, strict=True)
    if passes:
        from archcompile.passes import optimize

        optimize(model, passes)
    return model.eval()


def sample(spec: Spec, batch: int, seed: int) -> Tensor:
    """A random input batch of the spec's shape (seeded: reruns print the same)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *spec.graph.input, generator=generator)


def onnx_bytes(model: nn.Module, spec: Spec) -> bytes:
    """The ONNX file of the model's main outputs, batch axis dynamic."""
    names = main_outputs(spec)
    axes = {name: {0: "batch"} for name in ("input", *names)}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), _silenced_output():
            warnings.simplefilter("ignore")  # the exporter's deprecation notes
            torch.onnx.export(
                _Outputs(model, names).eval(),  # export restores the wrapper's mode
                (sample(spec, TRACE_BATCH, 0),),
                buffer,
                input_names=["input"],
                output_names=list(names),
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:  # noqa: BLE001 (the exporter raises many unrelated types)
        raise ExportError(
            Diagnostic(f"torch.onnx.export failed: {_first_line(exc)}", file=spec.display)
        ) from None
    return buffer.getvalue()


def run_onnx(data: bytes | str, x: Tensor) -> tuple[Tensor, ...]:
    """Outputs of an ONNX model (bytes or a file) in onnxruntime, on the CPU."""
    return OnnxRuntimeModel(data).run(x)


class OnnxRuntimeModel(nn.Module):
    """An ONNX file run by onnxruntime behind ``nn.Module``'s call, so that code
    written for torch models (``archc eval``) runs it unchanged: it returns the
    first (main) output."""

    def __init__(self, data: bytes | str) -> None:
        super().__init__()
        import onnxruntime

        self.session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])

    def run(self, x: Tensor) -> tuple[Tensor, ...]:
        feed = {self.session.get_inputs()[0].name: x.detach().cpu().contiguous().numpy()}
        return tuple(torch.from_numpy(r) for r in self.session.run(None, feed))

    def forward(self, x: Tensor) -> Tensor:
        return self.run(x)[0]


def onnxruntime_model(model: nn.Module, spec: Spec) -> OnnxRuntimeModel:
    """``model`` exported to ONNX in memory, checked, and loaded in onnxruntime."""
    model.eval()
    data = onnx_bytes(model, spec)
    verify(model, spec, "onnx", data)
    return OnnxRuntimeModel(data)


def torchscript_bytes(model: nn.Module, spec: Spec) -> bytes:
    """``torch.jit.script`` of the model, saved with ``torch.jit.save``."""
    try:
        with _no_deprecation_notice():
            scripted = torch.jit.script(model)
    except Exception as exc:  # noqa: BLE001 (so does the TorchScript compiler)
        raise ExportError(
            Diagnostic(f"torch.jit.script failed: {_first_line(exc)}", file=spec.display)
        ) from None
    buffer = io.BytesIO()
    with _no_deprecation_notice():
        torch.jit.save(scripted, buffer)
    return buffer.getvalue()


def run_torchscript(data: bytes, x: Tensor, names: tuple[str, ...]) -> tuple[Tensor, ...]:
    """Outputs of a saved TorchScript module, loaded back from its bytes."""
    with _no_deprecation_notice():
        loaded = torch.jit.load(io.BytesIO(data))
    with torch.no_grad():
        return flatten(loaded(x), names)


def max_difference(expected: tuple[Tensor, ...], actual: tuple[Tensor, ...]) -> float:
    """Largest absolute difference over all outputs (inf if their shapes differ)."""
    if len(expected) != len(actual):
        return float("inf")
    worst = 0.0
    for want, got in zip(expected, actual):
        if want.shape != got.shape:
            return float("inf")
        worst = max(worst, float((want.float() - got.float()).abs().max()))
    return worst


def verify(model: nn.Module, spec: Spec, fmt: str, data: bytes) -> float:
    """Run the exported bytes on a random batch; fail unless they match the model."""
    names = main_outputs(spec)
    x = sample(spec, CHECK_BATCH, 1)
    with torch.no_grad():
        expected = flatten(model(x), names)
    if fmt == "onnx":
        actual = run_onnx(data, x)
    else:
        actual = run_torchscript(data, x, names)
    diff = max_difference(expected, actual)
    scale = max(1.0, max(float(t.abs().max()) for t in expected))
    if not diff <= TOLERANCE * scale:
        raise ExportError(
            Diagnostic(
                f"the exported {fmt} model does not reproduce {spec.name}: max abs difference "
                f"{diff:.3g} > {TOLERANCE * scale:.3g}; nothing written",
                file=spec.display,
            )
        )
    return diff


def check_target(path: Path, spec: Spec, force: bool = False) -> Path:
    """Refuse ``-`` and the spec itself, then apply the file policy of every
    archc output (regular files only; an existing file only with ``force``:
    archc does not recognize exported models as its own)."""
    if str(path) in ("", "-"):
        raise UsageError("-o needs a file name (the exported model is binary)")
    if path.exists() and path.resolve() == Path(spec.display).resolve():
        raise OutputError(
            Diagnostic("is the spec itself; refusing to overwrite it", file=str(path))
        )
    return files.check_output(
        path, force=force, recognize=lambda fd: files.Owner.OTHER, what="model file", parents=True
    )


def write_bytes(path: Path, data: bytes) -> None:
    """Write the file atomically: an error leaves no partial file behind."""
    files.write_output(path, lambda tmp: Path(tmp).write_bytes(data), parents=True)


def export(
    spec: Spec,
    output: Path,
    fmt: str = "onnx",
    weights: Path | None = None,
    source: str = "live",
    max_params: int = DEFAULT_LIMITS.max_params,
    force: bool = False,
    passes: tuple[str, ...] = (),
) -> Exported:
    """Export ``spec``'s model to ``output``, verified against the torch module;
    ``passes``: optimizing passes applied first (ONNX only)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if passes and fmt != "onnx":
        raise UsageError(
            Diagnostic(
                "--optimize exports to ONNX only: TorchScript cannot compile the optimized modules",
                hint="export with --format onnx, or without --optimize",
            )
        )
    output = check_target(output, spec, force)
    model = load_model(spec, weights, source, max_params, passes)
    return export_model(model, spec, output, fmt)


def export_model(model: nn.Module, spec: Spec, output: Path, fmt: str = "onnx") -> Exported:
    """Export a model built for ``spec``; nothing is written unless it checks out."""
    model.eval()
    data = onnx_bytes(model, spec) if fmt == "onnx" else torchscript_bytes(model, spec)
    diff = verify(model, spec, fmt, data)
    write_bytes(output, data)
    return Exported(output, fmt, len(data), diff, main_outputs(spec))


@contextlib.contextmanager
def _no_deprecation_notice():
    """torch 2.13 marks torch.jit deprecated on every call; the files still work."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@contextlib.contextmanager
def _silenced_output():
    """Mute file descriptors 1 and 2: on failure, torch's exporter prints the
    whole graph from C++ (its log switch is stuck on in torch 2.13), burying
    the one-line message."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _first_line(exc: BaseException) -> str:
    """The gist of a torch error: its first line, without the graph it quotes."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    for cut in (" [Caused by", ". Please feel free"):
        text = text.split(cut)[0]
    return text if len(text) <= 200 else text[:197] + "..."
