"""``archc train``: train a spec on Fashion-MNIST, on one process or with DDP.

The loop is the same in both cases: the order of examples comes from
``DistributedSampler`` (one replica when not distributed), so a global batch
holds the same examples whatever the number of processes. Rank 0 alone writes
``metrics.jsonl``, ``curves.png`` and checkpoints.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from torch.utils.data import DistributedSampler

from archcompile import jsonsafe
from archcompile.backends.torch_build import build_tree, check_size
from archcompile.errors import Diagnostic, TrainingError, clip, shown
from archcompile.files import write_atomic
from archcompile.limits import DEFAULT_LIMITS
from archcompile.spec import Spec
from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.distributed import Distributed
from archcompile.train.evaluate import Evaluation, evaluate
from archcompile.train.imagefolder import FASHION, class_names, data_label, load_data
from archcompile.train.losses import check_class_count, output_loss
from archcompile.train.plots import plot_curves
from archcompile.train.progress import TrainingProgress
from archcompile.train.resume import check_fresh, resume_state, save_state
from archcompile.train.rundir import METRICS, RunFolder, truncate_metrics
from archcompile.train.schedule import OptimizerName, ScheduleName, lr_factor, make_optimizer


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


class _Stop:
    """Ctrl-C asks to stop after the current step (a second Ctrl-C stops at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Self:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


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
) -> TrainResult:
    """Train ``spec``; see ``docs/training.md``. ``on_step(step)`` runs after
    each step (tests use it to interrupt a run). ``force`` trains into a folder
    archc did not create, or over a previous run; ``init_from`` names a run
    folder or weights file to start from (see ``docs/weights.md``)."""
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
        )
    finally:
        folder.close()
        dist.close()


def _train(spec, config, out, resume, console, on_step, dist, init_from=None) -> TrainResult:
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
        _warner(console)(
            f"skipped {skipped} entries of {config.data} that are not .png/.jpg/.jpeg images"
        )
    model = build_tree(spec.tree(), config.max_params)
    if init_from is not None:
        _init_from(model, Path(init_from), spec, console)
    if config.optimize:
        from archcompile.passes import optimize

        optimize(model, config.optimize)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(dist.device, memory_format=fmt)
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
        step = resume_state(out, spec, config, model, optimizer, scheduler)
        if dist.is_main:
            truncate_metrics(out / METRICS, step, _warner(console))
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
            model,
            data.test_images,
            data.test_labels,
            data.class_names,
            bf16=bf16,
            channels_last=config.channels_last,
            shard=(dist.rank, dist.world),
            device=dist.device,
        )
        record = {
            "type": "eval",
            "step": step,
            "epoch": round(step / steps_per_epoch, 4),
            **evaluation.to_json(),
        }
        result.evaluations.append(record)
        if dist.is_main:
            _append(metrics, record)
        progress.evaluated(step, evaluation)
        return evaluation

    def save_now() -> None:
        nonlocal last_checkpoint
        if dist.is_main:
            save_state(out, spec, config, model, optimizer, scheduler, step, steps_per_epoch)
            plot_curves(metrics, out / "curves.png", f"{spec.name} ({spec.display})")
        last_checkpoint = step
        dist.barrier()

    with _Stop() as stop, progress:
        while step < total:
            epoch = step // steps_per_epoch
            sampler.set_epoch(epoch)
            order = torch.tensor(list(iter(sampler)), dtype=torch.int64)
            flips = _flips(config, epoch, len(data.train_labels)) if config.augment else None
            for index in range(step % steps_per_epoch, steps_per_epoch):
                batch = order[index * local_batch : (index + 1) * local_batch]
                x = data.train_images[batch].to(dist.device).contiguous(memory_format=fmt)
                if flips is not None:
                    x = torch.where(flips[batch].to(dist.device).view(-1, 1, 1, 1), x.flip(3), x)
                y = data.train_labels[batch].to(dist.device)
                try:
                    with torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=bf16):
                        outputs = wrapped(x)
                except (RuntimeError, ValueError) as exc:
                    raise _model_failure(spec, exc, step + 1, local_batch) from None
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
                    _append_if(
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
                lr = scheduler.get_last_lr()[0]
                scheduler.step()
                step += 1
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
                    _append_if(dist.is_main, metrics, record)
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


def _init_from(model, path: Path, spec: Spec, console: Console | None) -> None:
    """Start from the weights of ``path``; say which head was re-initialized."""
    from archcompile.weights import head_sizes, init_from

    fresh = init_from(model, path, head_sizes(spec))
    if console is None:
        return
    loaded = len(model.state_dict()) - len(fresh)
    console.print(f"initialized from {path}: {loaded} tensors loaded", markup=False)
    if fresh:
        shapes = ", ".join(f"{k} {list(model.state_dict()[k].shape)}" for k in fresh)
        console.print(f"re-initialized for the new number of classes: {shapes}", markup=False)


def _model_failure(spec: Spec, exc: Exception, step: int, batch: int) -> TrainingError:
    """torch refused to run the model on a batch (BatchNorm over a single value
    per channel, too little memory): one located line instead of a traceback."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TrainingError(
        Diagnostic(
            f"the model fails on a batch of {batch} at step {step}: {clip(first)}",
            file=spec.display,
            hint="BatchNorm needs more than one value per channel: use a larger --batch-size "
            "or input; with too little memory, a smaller one",
        )
    )


def _flips(config: TrainConfig, epoch: int, count: int) -> torch.Tensor:
    """Which examples to mirror this epoch: fixed by (seed, epoch), so every
    process and every resumed run agrees."""
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    return torch.rand(count, generator=generator) < 0.5


def _append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(jsonsafe.dumps(record) + "\n")


def _append_if(condition: bool, path: Path, record: dict) -> None:
    if condition:
        _append(path, record)


def _warner(console: Console | None) -> Callable[[str], None]:
    def warn(message: str) -> None:
        if console is not None:
            console.print(shown(message), markup=False, highlight=False)

    return warn


__all__ = ["TrainConfig", "TrainResult", "train"]
