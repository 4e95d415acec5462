"""``archc eval``: load a checkpoint into the live model (or the generated
source's class, or onnxruntime) and evaluate it."""

from __future__ import annotations

from pathlib import Path

import torch

from archcompile.errors import Diagnostic, TrainingError, clip
from archcompile.export import fresh_model
from archcompile.limits import DEFAULT_LIMITS
from archcompile.spec import Spec
from archcompile.train import checkpoint
from archcompile.train.data import load_split, prepare_images
from archcompile.train.evaluate import Evaluation, evaluate
from archcompile.train.imagefolder import FASHION, class_names, data_label, load_held_out
from archcompile.train.losses import check_class_count


def evaluate_checkpoint(
    spec: Spec,
    path: Path,
    data_dir: Path,
    limit_test: int | None = None,
    batch_size: int = 256,
    allow_spec_change: bool = False,
    max_params: int = DEFAULT_LIMITS.max_params,
    runtime: str = "torch",
    data: str = FASHION,
    val_split: float | None = None,
    tta_flip: bool | None = None,
    passes: tuple[str, ...] = (),
) -> Evaluation:
    saved = checkpoint.load(path, with_state=False)
    # --runtime generated: the class archc build writes, not the live module
    model = fresh_model(spec, "generated" if runtime == "generated" else "live", max_params)
    checkpoint.check_fits(saved, model, spec.sha256, spec.display, allow_spec_change)
    names = class_names(data)
    check_class_count(spec, len(names), data_label(data))  # weights that fit, other classes
    model.load_state_dict(saved.model, strict=True)
    if passes:
        from archcompile.passes import optimize

        optimize(model, passes)
    channels, height, width = spec.graph.input
    config = saved.meta.get("config", {})
    if val_split is None:  # the share training held out, so eval sees the same files
        val_split = config.get("val_split", 0.1)
    prepared, labels = _test_set(data, data_dir, (height, width), channels, limit_test, val_split)
    if runtime == "onnxruntime":  # the same weights, exported and run by onnxruntime
        from archcompile.export import onnxruntime_model

        model, device = onnxruntime_model(model, spec), torch.device("cpu")
    else:
        model, device = model.to(memory_format=torch.channels_last), None
    try:
        return evaluate(
            model,
            prepared,
            labels,
            names,
            batch_size=batch_size,
            bf16=config.get("precision") == "bf16" and runtime != "onnxruntime",
            channels_last=runtime != "onnxruntime",
            device=device,
            flip=bool(config.get("tta_flip", False) if tta_flip is None else tta_flip),
        )
    except (RuntimeError, ValueError) as exc:  # torch refused the model or the batch
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            Diagnostic(
                f"the model fails on a batch of {batch_size}: {clip(first)}",
                file=spec.display,
                hint="with too little memory, use a smaller --batch-size",
            )
        ) from None


def _test_set(data, data_dir, size, channels, limit_test, val_split):
    """The evaluation images and labels: Fashion-MNIST's test split, or an image
    folder's test folder or held-out share (the same files training held out)."""
    if data == FASHION:
        images, labels = load_split("test", data_dir, limit_test)
        return prepare_images(images, size, channels), torch.from_numpy(labels)
    return load_held_out(Path(data), size, channels, val_split, limit_test)
