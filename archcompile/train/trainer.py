"""``archc train``: train a spec on Fashion-MNIST, on one process or with DDP.

The loop is the same in both cases: the order of examples comes from
``DistributedSampler`` (one replica when not distributed), so a global batch
holds the same examples whatever the number of processes. Rank 0 alone writes
``metrics.jsonl``, ``curves.png`` and checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from torch.utils.data import DistributedSampler

from archcompile.backends.torch_build import build_tree, check_size
from archcompile.errors import Diagnostic, TrainingError
from archcompile.files import write_atomic
from archcompile.limits import DEFAULT_LIMITS
from archcompile.spec import Spec
from archcompile.train.augment import BatchTransforms
from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.distributed import Distributed
from archcompile.train.ema import EMA
from archcompile.train.evaluate import Evaluation, evaluate
from archcompile.train.helpers import Stop, append, append_if, model_failure, start_from, warner
from archcompile.train.imagefolder import FASHION, class_names, data_label, load_data
from archcompile.train.losses import check_class_count, output_loss
from archcompile.train.plots import plot_curves
from archcompile.train.progress import TrainingProgress
from archcompile.train.resume import check_fresh, resume_state, save_state
from archcompile.train.rundir import METRICS, RunFolder, truncate_metrics
from archcompile.train.schedule import OptimizerName, ScheduleName, lr_factor, make_optimizer
from archcompile.train.syncbn import convert_sync_bn
from archcompile.train.threads import ThreadGovernor


class TrainConfig(BaseModel):
    """Everything that determines a training run (stored in checkpoint.json)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.1, gt=0, allow_inf_nan=False)
    optimizer: OptimizerName = "sgd"
    schedule: ScheduleName = "constant"
    weight_decay: float | None = Field(None, ge=0, allow_inf_nan=False)
    warmup_steps: int = Field(0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = True
    augment: bool = False
    #: probability of erasing a random rectangle of each training image
    random_erasing: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    #: decay of an exponential moving average of the weights (evaluated, saved)
    ema: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False)
    #: evaluate on each image and its mirror image (the mean of the two logits)
    tta_flip: bool = False
    #: BatchNorm statistics over the global batch in multi-process runs
    sync_bn: bool = False
    seed: int = Field(0, ge=0, le=2**64 - 1)
    limit_train: int | None = Field(None, ge=1)
    limit_test: int | None = Field(None, ge=1)
    data_dir: str = str(DEFAULT_DATA_DIR)
    # "fashion-mnist" or an ImageFolder directory; val_split applies to the latter
    data: str = FASHION
    val_split: float = Field(0.1, gt=0, lt=1, allow_inf_nan=False)
    log_every: int = Field(1, ge=1)
    checkpoint_every: int | None = Field(None, ge=1)
    max_params: int = Field(DEFAULT_LIMITS.max_params, ge=1)
    # optimizing passes applied to the model (archcompile.passes); the state_dict is the plain one
    optimize: list[str] = []


@dataclass
class TrainResult:
    out: Path
    steps: int
    epochs: float
    seconds: float
    images_per_s: float
    final: Evaluation | None = None
    best_accuracy: float | None = None
    interrupted: bool = False
    evaluations: list[dict[str, Any]] = field(default_factory=list)


def _total_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    if config.max_steps is not None:
        return config.max_steps
    return (config.epochs or 1) * steps_per_epoch


def train(
    spec: Spec,
    config: TrainConfig,
    out: Path,
    resume: bool = False,
    console: Console | None = None,
    on_step: Callable[[int], None] | None = None,
    force: bool = False,
    init_from: Path | None = None,
    threads: ThreadGovernor | None = None,
) -> TrainResult:
    """Train ``spec``; see ``docs/training.md``. ``on_step(step)`` runs after
    each step (tests use it to interrupt a run). ``force`` trains into a folder
    archc did not create, or over a previous run; ``init_from`` names a run
    folder or weights file to start from (see ``docs/weights.md``);
    ``threads`` sets torch's thread count as training goes (None: leave it)."""
    dist = Distributed.from_environment()
    folder = RunFolder(Path(out))
    try:
        if dist.is_main:
            folder.open(resume, force)
            check_fresh(Path(out), resume, force)
        return _train(
            spec,
            config,
            Path(out),
            resume,
            console if dist.is_main else None,
            on_step,
            dist,
            init_from,
            threads,
        )
    finally:
        folder.close()
        dist.close()


def _train(
    spec, config, out, resume, console, on_step, dist, init_from=None, threads=None
) -> TrainResult:
    channels, height, width = spec.graph.input
    check_class_count(spec, len(class_names(config.data)), data_label(config.data))
    if config.batch_size % dist.world:
        raise TrainingError(
            Diagnostic(
                f"--batch-size {config.batch_size} is not divisible by {dist.world} processes"
            )
        )
    # refuse an oversized model before preparing gigabytes of images for it
    check_size(spec.tree(), config.max_params)
    torch.manual_seed(config.seed)
    data, skipped = load_data(
        config.data,
        Path(config.data_dir),
        (height, width),
        channels,
        config.limit_train,
        config.limit_test,
        config.val_split,
    )
    if skipped and dist.is_main:
        warner(console)(
            f"skipped {skipped} entries of {config.data} that are not .png/.jpg/.jpeg images"
        )
    model = build_tree(spec.tree(), config.max_params)
    if init_from is not None:
        start_from(model, Path(init_from), spec, console)
    if config.sync_bn and dist.world > 1:
        convert_sync_bn(model)
    if config.optimize:
        from archcompile.passes import optimize

        optimize(model, config.optimize)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(dist.device, memory_format=fmt)
    ema = EMA(model, config.ema) if config.ema is not None else None
    optimizer = make_optimizer(model, config.optimizer, config.lr, config.weight_decay)
    local_batch = config.batch_size // dist.world
    steps_per_epoch = len(data.train_labels) // config.batch_size
    if steps_per_epoch == 0:
        raise TrainingError(
            Diagnostic(
                f"{len(data.train_labels)} training images make no batch of {config.batch_size}"
            )
        )
    total = _total_steps(config, steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(config.schedule, total, config.warmup_steps)
    )
    step = 0
    if resume:
        step = resume_state(out, spec, config, model, optimizer, scheduler, ema)
        if dist.is_main:
            truncate_metrics(out / METRICS, step, warner(console))
    elif dist.is_main:
        write_atomic(out / METRICS, "", parents=False)
    wrapped = dist.wrap(model)
    sampler = DistributedSampler(
        range(len(data.train_labels)),
        num_replicas=dist.world,
        rank=dist.rank,
        shuffle=True,
        seed=config.seed,
    )
    bf16 = config.precision == "bf16"
    metrics = out / "metrics.jsonl"
    result = TrainResult(out, step, step / steps_per_epoch, 0.0, 0.0)
    progress = TrainingProgress(
        console, spec, spec.tree(), config, total, steps_per_epoch, len(data.train_labels)
    )
    last_checkpoint = step
    window_start, window_images = time.perf_counter(), 0
    started = time.perf_counter()
    trained_images = 0

    def evaluate_now() -> Evaluation:
        evaluation = evaluate(
            model if ema is None else ema.model,
            data.test_images,
            data.test_labels,
            data.class_names,
            bf16=bf16,
            channels_last=config.channels_last,
            shard=(dist.rank, dist.world),
            device=dist.device,
            flip=config.tta_flip,
        )
        record = {
            "type": "eval",
            "step": step,
            "epoch": round(step / steps_per_epoch, 4),
            **evaluation.to_json(),
        }
        result.evaluations.append(record)
        if dist.is_main:
            append(metrics, record)
        progress.evaluated(step, evaluation)
        return evaluation

    def save_now() -> None:
        nonlocal last_checkpoint
        if dist.is_main:
            save_state(out, spec, config, model, optimizer, scheduler, step, steps_per_epoch, ema)
            plot_curves(metrics, out / "curves.png", f"{spec.name} ({spec.display})")
        last_checkpoint = step
        dist.barrier()

    with Stop() as stop, progress:
        while step < total:
            epoch = step // steps_per_epoch
            sampler.set_epoch(epoch)
            order = torch.tensor(list(iter(sampler)), dtype=torch.int64)
            transform = BatchTransforms(config, epoch, len(data.train_labels))
            for index in range(step % steps_per_epoch, steps_per_epoch):
                batch = order[index * local_batch : (index + 1) * local_batch]
                x = data.train_images[batch].to(dist.device).contiguous(memory_format=fmt)
                x = transform(x, batch)
                y = data.train_labels[batch].to(dist.device)
                try:
                    with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=bf16):
                        outputs = wrapped(x)
                except (RuntimeError, ValueError) as exc:
                    raise model_failure(spec, exc, step + 1, local_batch) from None
                loss, logits = output_loss(outputs, y, spec.graph.outputs, config.label_smoothing)
                correct = (logits.argmax(1) == y).sum()
                flags = dist.combine(
                    [
                        float(not torch.isfinite(loss)),
                        float(stop.requested),
                        loss.item(),
                        float(correct),
                        float(len(y)),
                    ]
                )
                if flags[0]:
                    append_if(
                        dist.is_main,
                        metrics,
                        {"type": "train", "step": step + 1, "loss": None, "nonfinite": True},
                    )
                    raise TrainingError(
                        Diagnostic(
                            f"the loss is no longer finite at step {step + 1} (epoch {epoch + 1}); training stopped",
                            hint=f"the last good checkpoint (step {last_checkpoint}) is in {out}"
                            if last_checkpoint
                            else "lower --lr, or add BatchNorm (specs/googlenet_bn.yaml)",
                        )
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                lr = scheduler.get_last_lr()[0]
                scheduler.step()
                step += 1
                if threads is not None:
                    threads.step(step)
                trained_images += config.batch_size
                window_images += config.batch_size
                mean_loss = flags[2] / dist.world
                accuracy = flags[3] / flags[4]
                if step % config.log_every == 0 or step == total:
                    now = time.perf_counter()
                    speed = window_images / max(now - window_start, 1e-9)
                    window_start, window_images = now, 0
                    record = {
                        "type": "train",
                        "step": step,
                        "epoch": round(step / steps_per_epoch, 4),
                        "loss": mean_loss,
                        "accuracy": accuracy,
                        "lr": lr,
                        "images_per_s": round(speed, 1),
                    }
                    append_if(dist.is_main, metrics, record)
                    progress.advance(step, mean_loss, accuracy, speed)
                epoch_end = step % steps_per_epoch == 0
                if epoch_end or step == total:
                    evaluation = evaluate_now()
                    result.best_accuracy = max(result.best_accuracy or 0.0, evaluation.accuracy)
                    result.final = evaluation
                    save_now()
                elif config.checkpoint_every and step % config.checkpoint_every == 0:
                    save_now()
                if on_step is not None:
                    on_step(step)
                if flags[1]:
                    if last_checkpoint != step:
                        save_now()
                    result.interrupted = True
                    break
                if step >= total:
                    break
            if result.interrupted:
                break
    result.steps = step
    result.epochs = step / steps_per_epoch
    result.seconds = time.perf_counter() - started
    result.images_per_s = trained_images / max(result.seconds, 1e-9)
    return result


__all__ = ["TrainConfig", "TrainResult", "train"]
