"""Saving and resuming the state of a training run: the model, the optimizer,
the schedule and the RNG, checked against the spec and flags on resume."""

from __future__ import annotations

from pathlib import Path

import torch

from archcompile.errors import CheckpointError, Diagnostic, clip, clipped_repr
from archcompile.train import checkpoint
from archcompile.train.ema import TRAINED

#: fields that shape the trajectory: a resumed run must keep them
_TRAJECTORY = (
    "batch_size",
    "lr",
    "optimizer",
    "schedule",
    "weight_decay",
    "warmup_steps",
    "label_smoothing",
    "precision",
    "augment",
    "seed",
    "limit_train",
    "random_erasing",
    "ema",
    "sync_bn",
)
#: what runs saved before a flag existed trained with
_BEFORE = {"random_erasing": 0.0, "ema": None, "sync_bn": False}


def check_fresh(out: Path, resume: bool, force: bool) -> None:
    """A new run refuses a folder that holds a checkpoint, unless forced."""
    if resume:
        return
    held = checkpoint.current(out) is not None or (out / checkpoint.JSON_FILE).exists()
    if held and not force:
        raise CheckpointError(
            Diagnostic(
                "already holds a checkpoint",
                file=str(out),
                hint="pass --resume to continue it, --force to start over, or choose another --out",
            )
        )
    if held:  # forced: the old checkpoint is no longer this folder's
        (out / checkpoint.POINTER).unlink(missing_ok=True)


def save_state(
    out, spec, config, model, optimizer, scheduler, step, steps_per_epoch, ema=None
) -> None:
    """With ``ema``, ``model.safetensors`` holds the average (what eval and the
    generated source load) and the trained weights go with the optimizer's."""
    tensors, groups = checkpoint.optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    if ema is not None:
        for key, value in model.state_dict().items():
            tensors[TRAINED + key] = value.detach().cpu().contiguous().clone()
    meta = {
        "spec": checkpoint.spec_meta(spec),
        "step": step,
        "epoch": step / steps_per_epoch,
        "config": config.model_dump(mode="json"),
        "optimizer": {"param_groups": groups},
        "scheduler": {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"},
        "torch": torch.__version__,
    }
    weights = model if ema is None else ema.model
    checkpoint.save(out, weights.state_dict(), tensors, meta)


def resume_state(out, spec, config, model, optimizer, scheduler, ema=None) -> int:
    saved = checkpoint.load(out)
    meta = saved.meta
    where = saved.directory / checkpoint.JSON_FILE
    checkpoint.check_fits(saved, model, spec.sha256, spec.display, for_resume=True)
    before = meta["config"]
    changed = [k for k in _TRAJECTORY if before.get(k, _BEFORE.get(k)) != getattr(config, k)]
    if _same_folder(before.get("data_dir"), config.data_dir) is False:
        changed.append("data_dir")
    changed += _changed_data(before, config)
    if changed:
        detail = ", ".join(
            f"--{k.replace('_', '-')} was {clipped_repr(before.get(k))}, now {clipped_repr(getattr(config, k))}"
            for k in changed
        )
        raise CheckpointError(
            Diagnostic(
                f"cannot resume exactly: {detail}",
                file=str(where),
                hint="resume with the same flags (only --epochs/--max-steps may change), or use another --out",
            )
        )
    try:
        if ema is None:
            model.load_state_dict(saved.model, strict=True)
        else:
            trained = {
                k[len(TRAINED) :]: v for k, v in saved.state.items() if k.startswith(TRAINED)
            }
            model.load_state_dict(trained, strict=True)
            ema.model.load_state_dict(saved.model, strict=True)
            ema.updates = saved.step
        checkpoint.restore_optimizer(optimizer, saved.state, meta["optimizer"]["param_groups"])
        _check_like(meta["scheduler"], scheduler.state_dict())
        scheduler.load_state_dict(
            {**meta["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)}
        )
        torch.set_rng_state(saved.state["rng.torch"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise CheckpointError(
            Diagnostic(
                f"corrupt checkpoint: cannot restore the training state ({type(exc).__name__}: "
                f"{clip(str(exc))})",
                file=str(where),
                hint="train again into a new --out; this checkpoint was edited or damaged",
            )
        ) from None
    return saved.step


def _check_like(saved: dict, fresh: dict) -> None:
    """Refuse a saved scheduler state whose fields differ in type from a fresh one's."""
    for key, value in fresh.items():
        if key == "lr_lambdas":
            continue
        if type(saved.get(key)) is not type(value) and not (
            isinstance(value, float) and type(saved.get(key)) is int
        ):
            raise TypeError(f"scheduler field {key!r} is {clipped_repr(saved.get(key))}")


def _changed_data(before: dict, config) -> list[str]:
    """--data and (for an image folder) --val-split decide which images train;
    checkpoints written before --data existed trained on Fashion-MNIST."""
    data = before.get("data", "fashion-mnist")
    if data != config.data and (data == "fashion-mnist" or config.data == "fashion-mnist"):
        return ["data"]
    if config.data == "fashion-mnist":
        return []
    if _same_folder(data, config.data) is False:
        return ["data"]
    return ["val_split"] if before.get("val_split") != config.val_split else []


def _same_folder(a: object, b: str) -> bool | None:
    """Whether two --data-dir values name the same folder (None: unknown)."""
    if not isinstance(a, str):
        return None
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, ValueError):
        return a == b
