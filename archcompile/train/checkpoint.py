"""Checkpoints: weights in safetensors, everything else in readable JSON.

A checkpoint is a step folder, ``step-NNNNNNNN``, of the training output
folder. It holds ``model.safetensors`` (the live model's ``state_dict``, whose
keys are also those of the generated source), ``optimizer.safetensors``
(optimizer tensors and the torch RNG state) and ``checkpoint.json`` (the
spec's hash and resolved document, the training configuration and position,
the optimizer's hyper-parameters and the SHA-256 of both tensor files). The
file ``LATEST`` names the current step folder; :func:`save` switches it with
one atomic rename, after the new folder is on disk, so a crash at any moment
leaves a complete checkpoint current (see docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from archcompile.errors import CheckpointError, Diagnostic, clipped_repr
from archcompile.files import fsync_dir, fsync_file, write_atomic

FORMAT = "archc-checkpoint"
VERSION = 1
MODEL_FILE = "model.safetensors"
STATE_FILE = "optimizer.safetensors"
JSON_FILE = "checkpoint.json"
#: names the current step folder of a training output folder
POINTER = "LATEST"
_STEP_NAME = re.compile(r"step-[0-9]{8}(\.[0-9]+)?")


@dataclass
class Checkpoint:
    directory: Path
    meta: dict[str, Any]
    model: dict[str, torch.Tensor]
    state: dict[str, torch.Tensor]

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def _error(path: Path, message: str, hint: str | None = None) -> CheckpointError:
    return CheckpointError(Diagnostic(message, file=str(path), hint=hint))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Split an optimizer's state into tensors (for safetensors) and JSON."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optimizer.{index}.{name}"] = tensor.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def fault(point: str) -> None:
    """Die at once (SIGKILL) when ``ARCHC_FAULT=after:<point>`` asks to: the
    crash tests use it to stop a save at each of its steps."""
    if os.environ.get("ARCHC_FAULT") == f"after:{point}":
        os.kill(os.getpid(), signal.SIGKILL)


def current(out: Path) -> Path | None:
    """The step folder ``out/LATEST`` names, or None when there is none."""
    try:
        name = (out / POINTER).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not _STEP_NAME.fullmatch(name):
        return None
    return out / name


def spec_meta(spec: Any) -> dict[str, Any]:
    """What checkpoint.json records of the spec: enough to refuse another
    spec's weights and to rebuild the resolved spec (``--set`` included)."""
    return {
        "path": spec.display,
        "name": spec.name,
        "sha256": spec.sha256,
        "document": spec.document,
    }


def save(
    out: Path,
    model_state: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> Path:
    """Write a checkpoint of ``meta["step"]`` into a new step folder of ``out``
    and make it the current one; return that folder.

    The sequence: the three files into ``step-N.tmp`` (each flushed to disk),
    the folder renamed to ``step-N`` and flushed, then ``LATEST`` replaced
    atomically to name it, then older step folders removed. A crash at any
    point leaves ``LATEST`` naming a complete checkpoint: the new one or the
    previous one. An ``OSError`` (a full disk) is one located error, and the
    previous checkpoint stays current.
    """
    previous = current(out)
    step = int(meta["step"])
    final = _free_name(out, step, previous)
    tmp = out / (final.name + ".tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _write_files(tmp, model_state, state, meta)
        fsync_dir(tmp)
        fault("folder")
        os.rename(tmp, final)
        fsync_dir(out)
        fault("rename")
        write_atomic(out / POINTER, final.name + "\n", parents=False)
        fault("pointer")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = (
            f"the previous checkpoint ({previous.name}) is intact"
            if previous
            else "no checkpoint was kept"
        )
        raise _error(out, f"cannot write a checkpoint: {exc.strerror or exc}; {kept}") from None
    _remove_old(out, keep=final)
    fault("cleanup")
    return final


def _write_files(folder: Path, model_state, state, meta) -> None:
    weights = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
    save_file(weights, folder / MODEL_FILE, metadata={"format": "pt"})
    fsync_file(folder / MODEL_FILE)
    fault("model")
    save_file(state, folder / STATE_FILE)
    fsync_file(folder / STATE_FILE)
    fault("optimizer")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        **meta,
        "files": {name: _sha256(folder / name) for name in (MODEL_FILE, STATE_FILE)},
    }
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    (folder / JSON_FILE).write_text(text, encoding="utf-8")
    fsync_file(folder / JSON_FILE)
    fault("meta")


def _free_name(out: Path, step: int, previous: Path | None) -> Path:
    """``step-N``, or ``step-N.K`` when ``step-N`` is the current checkpoint."""
    base = f"step-{step:08d}"
    name, k = base, 0
    while previous is not None and previous.name == name:
        k += 1
        name = f"{base}.{k}"
    stale = out / name
    if stale.exists():  # a leftover of a crash after its rename: never current
        shutil.rmtree(stale)
    return stale


def _remove_old(out: Path, keep: Path) -> None:
    for entry in out.iterdir():
        if entry != keep and _STEP_NAME.fullmatch(entry.name.removesuffix(".tmp")):
            shutil.rmtree(entry, ignore_errors=True)


def resolve(path: Path) -> Path:
    """The checkpoint folder named by ``path``: a training output folder (its
    current step folder), a step folder, or a ``checkpoint.json``."""
    path = Path(path)
    try:
        if path.is_file() and path.name in (JSON_FILE, MODEL_FILE):
            return path.parent
        if path.is_dir():
            return current(path) or path
    except OSError as exc:
        raise _error(path, f"cannot read: {exc.strerror or exc}") from None
    raise _error(
        path, "no such checkpoint", "pass a training output directory or its checkpoint.json"
    )


def load(path: Path, with_state: bool = True) -> Checkpoint:
    """Read and verify a checkpoint; every problem is one :class:`CheckpointError`."""
    directory = resolve(path)
    meta_path = directory / JSON_FILE
    if not meta_path.is_file():
        raise _error(
            meta_path, "no checkpoint.json here", "train first, or pass the directory of a run"
        )
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _error(meta_path, f"corrupt checkpoint metadata: {exc}") from None
    except OSError as exc:
        raise _error(meta_path, f"cannot read: {exc.strerror or exc}") from None
    _check_meta(meta_path, meta)
    names = (MODEL_FILE, STATE_FILE) if with_state else (MODEL_FILE,)
    loaded = {}
    for name in names:
        file = directory / name
        if not file.is_file():
            raise _error(file, "missing checkpoint file")
        expected = meta["files"].get(name)
        if expected != _sha256(file):
            raise _error(
                file, "does not match checkpoint.json (truncated, corrupt or from another save)"
            )
        try:
            loaded[name] = load_file(file)
        except (SafetensorError, OSError, ValueError) as exc:
            raise _error(file, f"corrupt safetensors file: {exc}") from None
    return Checkpoint(directory, meta, loaded[MODEL_FILE], loaded.get(STATE_FILE, {}))


#: the types of the fields of checkpoint.json that archc reads
_META_TYPES = {
    "step": int,
    "files": dict,
    "spec": dict,
    "config": dict,
    "optimizer": dict,
    "scheduler": dict,
}


def _check_meta(meta_path: Path, meta: Any) -> None:
    """Refuse a checkpoint.json that is not one archc wrote (or was edited badly)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _error(meta_path, "not an archc checkpoint")
    if meta.get("version") != VERSION:
        raise _error(
            meta_path,
            f"checkpoint format version {clipped_repr(meta.get('version'))}; this archc reads {VERSION}",
        )
    for key, kind in _META_TYPES.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _error(
                meta_path,
                f"corrupt checkpoint metadata: {key!r} is missing or not a {kind.__name__}",
            )
    if meta["step"] < 0:
        raise _error(meta_path, "corrupt checkpoint metadata: 'step' is negative")


def check_fits(
    checkpoint: Checkpoint,
    model: torch.nn.Module,
    spec_sha256: str,
    spec_display: str,
    allow_spec_change: bool = False,
    for_resume: bool = False,
) -> None:
    """Refuse weights trained for another spec, naming what differs. With
    ``allow_spec_change``, another spec is accepted when its weights fit
    (``archc eval`` only: a resumed run must keep its spec)."""
    trained = checkpoint.meta.get("spec", {})
    ours = model.state_dict()
    missing = [k for k in ours if k not in checkpoint.model]
    unexpected = [k for k in checkpoint.model if k not in ours]
    shaped = [
        k for k in ours if k in checkpoint.model and checkpoint.model[k].shape != ours[k].shape
    ]
    where = checkpoint.directory / JSON_FILE
    if missing or unexpected or shaped:
        detail = []
        if shaped:
            key = shaped[0]
            detail.append(
                f"{len(shaped)} tensors differ in shape, e.g. {key} {list(checkpoint.model[key].shape)} vs {list(ours[key].shape)}"
            )
        if missing:
            detail.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
        raise _error(
            where,
            f"checkpoint of spec {clipped_repr(trained.get('path', '?'))} does not fit {spec_display}: "
            + "; ".join(detail),
        )
    if trained.get("sha256") != spec_sha256 and not allow_spec_change:
        raise _error(
            where,
            f"checkpoint was trained with a different spec ({trained.get('path', '?')}, sha256 "
            f"{str(trained.get('sha256'))[:12]}...) than {spec_display} (sha256 {spec_sha256[:12]}...)",
            "resume with the spec the run was trained with, or train into another --out"
            if for_resume
            else "the weights have the right shapes; pass --allow-spec-change to use them anyway",
        )
