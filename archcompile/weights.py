"""Weights from elsewhere: read a state_dict, map it onto a spec's model.

A state_dict saved by another program (torchvision, a hand-written model)
holds the same tensors as the spec's live model, but not always under the
same names. :func:`plan_import` maps it by name when every name matches, else
by order and shape (both lists in state_dict order, paired one by one), and
refuses anything in between: a wrong mapping would load without an error and
train or predict garbage. Everything here is torch only; the commands that
use it (``archc import-weights``, ``archc train --init-from``) print.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from archcompile.errors import CheckpointError, Diagnostic
from archcompile.train import checkpoint
from archcompile.train.rundir import RunFolder

#: suffixes of the state_dict files read, and how
SAFETENSORS = (".safetensors",)
PICKLES = (".pt", ".pth", ".bin")


@dataclass(frozen=True)
class WeightMap:
    """How a state_dict maps onto a model: ``(source key, model key, shape)``
    in the model's order, and whether names or order decided."""

    pairs: list[tuple[str, str, tuple[int, ...]]]
    method: str  # "name" or "order"


def _error(where: Path | str, message: str, hint: str | None = None) -> CheckpointError:
    return CheckpointError(Diagnostic(message, file=str(where), hint=hint))


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict file: ``.safetensors``, or a pickle (``.pt``) read with
    ``weights_only=True`` so that loading it can never run code."""
    path = Path(path)
    if path.is_dir():
        raise _error(
            path,
            "is a directory, not a state_dict file",
            "a run folder is archc's already: pass it to archc eval or --init-from",
        )
    if not path.is_file():
        raise _error(path, "no such file", "pass a .safetensors or .pt state_dict file")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS:
        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise _error(path, f"corrupt safetensors file: {exc}") from None
    if suffix not in PICKLES:
        raise _error(path, f"unknown weights file type {suffix!r}", "use .safetensors or .pt")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad pickle
        raise _error(
            path,
            f"cannot read as a weights-only torch file: {type(exc).__name__}",
            "save a plain state_dict: torch.save(model.state_dict(), path)",
        ) from None
    return _tensors_only(data, path)


def _tensors_only(data: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise _error(
            path,
            "not a state_dict (a mapping of names to tensors)",
            "save a plain state_dict: torch.save(model.state_dict(), path)",
        )
    return dict(data)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Weights from a run folder (or its checkpoint.json) or a state_dict file."""
    path = Path(path)
    if path.is_dir() or path.name == checkpoint.JSON_FILE:
        return checkpoint.load(path, with_state=False).model
    return read_state_dict(path)


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _shown(shape: tuple[int, ...]) -> str:
    return str(list(shape))


def check_same(
    model: dict[str, torch.Tensor], source: dict[str, torch.Tensor], where: Path | str
) -> None:
    """Refuse a state_dict whose names or shapes differ from the model's,
    naming the first offending key of each kind."""
    missing = [k for k in model if k not in source]
    extra = [k for k in source if k not in model]
    shaped = [k for k in model if k in source and _shape(source[k]) != _shape(model[k])]
    problems = []
    if shaped:
        key = shaped[0]
        problems.append(
            f"{len(shaped)} differ in shape (first: {key} {_shown(_shape(source[key]))}, "
            f"the model's {_shown(_shape(model[key]))})"
        )
    if missing:
        problems.append(f"{len(missing)} missing (first: {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} extra (first: {extra[0]})")
    if problems:
        raise _error(
            where,
            "weights do not fit the model: " + "; ".join(problems),
            "check the spec and its --set parameters (num_classes, widths) against the weights",
        )


def load_strict(model: torch.nn.Module, path: Path) -> None:
    """Load a run folder or state_dict file into ``model``: every key, every shape."""
    source = read_weights(path)
    check_same(model.state_dict(), source, path)
    model.load_state_dict(source, strict=True)


def keeps_order(path: Path) -> bool:
    """Whether a file keeps its state_dict's order: a pickle does; safetensors
    stores tensors sorted by type and name, so its order says nothing."""
    return Path(path).suffix.lower() not in SAFETENSORS


def plan_import(
    source: dict[str, torch.Tensor],
    model: dict[str, torch.Tensor],
    where: Path | str,
    ordered: bool = True,
) -> WeightMap:
    """Map ``source`` onto ``model``: by name when every name matches, else by
    order and shape (only when ``source`` is ``ordered``); raise
    :class:`CheckpointError` on any doubt."""
    if source.keys() == model.keys():
        check_same(model, source, where)
        return WeightMap([(k, k, _shape(v)) for k, v in model.items()], "name")
    if not ordered:
        raise _error(
            where,
            f"names differ ({_unmatched(source, model)}) and a .safetensors file keeps no "
            "order to pair tensors by",
            "rename its keys to the model's, or save it with torch.save(state_dict, 'x.pt'), "
            "which keeps the order",
        )
    if len(source) != len(model):
        raise _error(
            where,
            f"{len(source)} tensors for a model of {len(model)}: names differ "
            f"({_unmatched(source, model)}) and order cannot pair them",
            "the file must hold exactly the model's tensors; check the spec and --set",
        )
    pairs = list(zip(source.items(), model.items(), strict=True))
    for index, ((src, tensor), (dst, ours)) in enumerate(pairs):
        if _shape(tensor) != _shape(ours):
            raise _error(
                where,
                f"names differ and order does not fit: tensor {index} is {src} "
                f"{_shown(_shape(tensor))}, the model's is {dst} {_shown(_shape(ours))}",
                "the file must hold the model's tensors, in state_dict order, with its shapes; "
                "check the spec and its --set parameters (num_classes, widths)",
            )
        if src != dst and src in model:
            raise _error(
                where,
                f"ambiguous: {src} names a model tensor, but by order it is {dst} (tensor {index})",
                "rename the file's keys so that all or none match the model's",
            )
    return WeightMap([(src, dst, _shape(ours)) for (src, _), (dst, ours) in pairs], "order")


def _unmatched(source: dict[str, Any], model: dict[str, Any]) -> str:
    """The first name of one side that the other lacks, for a message."""
    missing = [k for k in model if k not in source]
    if missing:
        return f"first missing: {missing[0]}"
    return "first extra: " + next(k for k in source if k not in model)


def apply_mapping(mapping: WeightMap, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's state_dict, built from ``source`` as ``mapping`` says."""
    return {dst: source[src] for src, dst, _ in mapping.pairs}


def import_weights(spec: Any, file: Path, out: Path, max_params: int) -> WeightMap:
    """``archc import-weights``: map ``file`` onto ``spec``'s live model, load
    it strictly and write the result to ``out`` as a run folder."""
    from archcompile.backends.torch_build import build_module

    _refuse_existing(Path(out))
    source = read_state_dict(Path(file))
    model = build_module(spec, max_params)
    mapping = plan_import(source, model.state_dict(), file, keeps_order(file))
    model.load_state_dict(apply_mapping(mapping, source), strict=True)
    with open(file, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    origin = {"file": str(file), "sha256": digest, "by": mapping.method}
    write_run(Path(out), spec, model.state_dict(), origin)
    return mapping


def _refuse_existing(directory: Path) -> None:
    held = checkpoint.current(directory) is not None or (directory / checkpoint.JSON_FILE).exists()
    if held:
        raise _error(
            directory, "already holds a checkpoint", "choose another -o, or remove it first"
        )


def write_run(
    directory: Path, spec: Any, state: dict[str, torch.Tensor], origin: dict[str, Any]
) -> None:
    """Write imported weights as a run folder (the checkpoint format, at step
    0 and with no optimizer state), so that ``archc eval`` and
    ``--init-from`` read it as they read a training run."""
    _refuse_existing(Path(directory))
    folder = RunFolder(Path(directory)).open(resume=False, force=False)  # marker and lock
    meta = {
        "spec": checkpoint.spec_meta(spec),
        "step": 0,
        "epoch": 0.0,
        "imported": origin,
        "torch": torch.__version__,
        # not trained here: no training configuration, optimizer or schedule
        "config": {},
        "optimizer": {},
        "scheduler": {},
    }
    try:
        checkpoint.save(Path(directory), state, {}, meta)
    finally:
        folder.close()


def head_sizes(spec: Any) -> set[int]:
    """Class counts of the spec's outputs (main and auxiliary): the first
    dimension a classifier head's tensors have."""
    report = spec.tree()
    shapes = [report.block(output.name).shape for output in spec.graph.outputs]
    return {shape[0] for shape in shapes if len(shape) == 1}


def init_from(model: torch.nn.Module, path: Path, heads: set[int]) -> list[str]:
    """Load the weights of ``path`` into ``model`` for fine-tuning: every key
    and shape must match, except a classifier head whose first dimension is
    one of ``heads`` (a new ``num_classes``), which keeps its fresh
    initialization. Returns the keys re-initialized."""
    source = read_weights(path)
    ours = model.state_dict()
    fresh = [k for k in ours if k in source and _is_new_head(source[k], ours[k], heads)]
    kept = {k: v for k, v in source.items() if k not in fresh}
    check_same({k: v for k, v in ours.items() if k not in fresh}, kept, path)
    model.load_state_dict({**ours, **kept}, strict=True)
    return fresh


def _is_new_head(theirs: torch.Tensor, ours: torch.Tensor, heads: set[int]) -> bool:
    """A tensor of a classifier head resized for another number of classes."""
    a, b = _shape(theirs), _shape(ours)
    return len(a) == len(b) >= 1 and a[1:] == b[1:] and a[0] != b[0] and b[0] in heads
