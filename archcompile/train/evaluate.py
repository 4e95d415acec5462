"""Evaluation: test loss, accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    confusion: torch.Tensor  # [true class, predicted class] counts, int64
    class_names: tuple[str, ...]

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def per_class(self) -> list[float]:
        totals = self.confusion.sum(1).clamp(min=1)
        return (self.confusion.diag() / totals).tolist()

    def to_json(self) -> dict:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "count": self.count,
            "per_class": dict(zip(self.class_names, self.per_class)),
        }


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: tuple[str, ...],
    batch_size: int = 256,
    bf16: bool = False,
    channels_last: bool = True,
    shard: tuple[int, int] = (0, 1),
    device: torch.device | None = None,
    flip: bool = False,
) -> Evaluation:
    """Evaluate ``model`` (in eval mode) on ``images``.

    ``shard=(rank, world)`` evaluates every ``world``-th example starting at
    ``rank`` and sums the results over the process group, so that distributed
    training evaluates the test set once, split between processes.
    """
    was_training = model.training
    model.eval()
    rank, world = shard
    indices = torch.arange(rank, len(images), world)
    device = device or next(model.parameters()).device
    classes = len(class_names)
    confusion = torch.zeros(classes, classes, dtype=torch.int64)
    total_loss = torch.zeros((), dtype=torch.float64)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for start in range(0, len(indices), batch_size):
        batch = indices[start : start + batch_size]
        x = images[batch].to(device).contiguous(memory_format=fmt)
        y = labels[batch]
        logits = _logits(model, x, bf16)
        if flip:
            logits = (logits + _logits(model, x.flip(3), bf16)) / 2
        total_loss += F.cross_entropy(logits, y, reduction="sum").double()
        predicted = logits.argmax(1)
        confusion += torch.bincount(y * classes + predicted, minlength=classes * classes).view(
            classes, classes
        )
    if world > 1:
        import torch.distributed as dist

        # nccl reduces tensors on the GPU, gloo on the CPU
        confusion, total_loss = confusion.to(device), total_loss.to(device)
        dist.all_reduce(confusion)
        dist.all_reduce(total_loss)
        confusion, total_loss = confusion.cpu(), total_loss.cpu()
    model.train(was_training)
    count = int(confusion.sum())
    return Evaluation(
        loss=float(total_loss) / max(count, 1),
        accuracy=float(confusion.diag().sum()) / max(count, 1),
        confusion=confusion,
        class_names=class_names,
    )


def _logits(model: nn.Module, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    if not isinstance(logits, torch.Tensor):  # several outputs: the main one
        logits = next(v for v in logits if v is not None)
    return logits.float().cpu()
