"""Checkpoints: weights in safetensors, everything else in readable JSON.

A checkpoint directory holds ``model.safetensors`` (the live model's
``state_dict``, whose keys are also those of the generated source),
``optimizer.safetensors`` (optimizer tensors and the torch RNG state) and
``checkpoint.json`` (the spec's hash and resolved document, the training
configuration and position, the optimizer's hyper-parameters and the SHA-256
of both tensor files). Files are replaced atomically and ``checkpoint.json``
last, so an interrupted write leaves the previous checkpoint readable; the
recorded hashes catch a mixed one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from archcompile.backends.output import replace_atomically
from archcompile.errors import CheckpointError, Diagnostic

FORMAT = "archc-checkpoint"
VERSION = 1
MODEL_FILE = "model.safetensors"
STATE_FILE = "optimizer.safetensors"
JSON_FILE = "checkpoint.json"


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


def save(
    directory: Path,
    model_state: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> None:
    """Write a checkpoint into ``directory`` (atomically, file by file)."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
    replace_atomically(
        directory / MODEL_FILE, lambda tmp: save_file(weights, tmp, metadata={"format": "pt"})
    )
    replace_atomically(directory / STATE_FILE, lambda tmp: save_file(state, tmp))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        **meta,
        "files": {name: _sha256(directory / name) for name in (MODEL_FILE, STATE_FILE)},
    }
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    replace_atomically(directory / JSON_FILE, lambda tmp: Path(tmp).write_text(text))


def resolve(path: Path) -> Path:
    """The checkpoint directory named by ``path`` (a directory or its checkpoint.json)."""
    path = Path(path)
    if path.is_file() and path.name in (JSON_FILE, MODEL_FILE):
        return path.parent
    if path.is_dir():
        return path
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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _error(meta_path, "not an archc checkpoint")
    if meta.get("version") != VERSION:
        raise _error(
            meta_path,
            f"checkpoint format version {meta.get('version')!r}; this archc reads {VERSION}",
        )
    names = (MODEL_FILE, STATE_FILE) if with_state else (MODEL_FILE,)
    loaded = {}
    for name in names:
        file = directory / name
        if not file.is_file():
            raise _error(file, "missing checkpoint file")
        expected = meta.get("files", {}).get(name)
        if expected != _sha256(file):
            raise _error(
                file, "does not match checkpoint.json (truncated, corrupt or from another save)"
            )
        try:
            loaded[name] = load_file(file)
        except (SafetensorError, OSError, ValueError) as exc:
            raise _error(file, f"corrupt safetensors file: {exc}") from None
    return Checkpoint(directory, meta, loaded[MODEL_FILE], loaded.get(STATE_FILE, {}))


def check_fits(
    checkpoint: Checkpoint,
    model: torch.nn.Module,
    spec_sha256: str,
    spec_display: str,
    allow_spec_change: bool = False,
) -> None:
    """Refuse weights trained for another spec, naming what differs. With
    ``allow_spec_change``, another spec is accepted when its weights fit."""
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
            f"checkpoint of spec {trained.get('path', '?')!r} does not fit {spec_display}: "
            + "; ".join(detail),
        )
    if trained.get("sha256") != spec_sha256 and not allow_spec_change:
        raise _error(
            where,
            f"checkpoint was trained with a different spec ({trained.get('path', '?')}, sha256 "
            f"{str(trained.get('sha256'))[:12]}...) than {spec_display} (sha256 {spec_sha256[:12]}...)",
            "the weights have the right shapes; pass --allow-spec-change to use them anyway",
        )
