"""Optimizers and learning-rate schedules for ``archc train``.

Schedules are pure functions of the step (used through ``LambdaLR``), so that
a resumed run continues on exactly the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

OptimizerName = Literal["sgd", "sgd-momentum", "adamw"]
ScheduleName = Literal["constant", "cosine", "onecycle"]

#: weight decay used when --weight-decay is not given
DEFAULT_WEIGHT_DECAY = {"sgd": 0.0, "sgd-momentum": 5e-4, "adamw": 0.05}


def make_optimizer(
    model: nn.Module, name: OptimizerName, lr: float, weight_decay: float | None
) -> torch.optim.Optimizer:
    """The optimizer; biases and norm parameters (1-D tensors) are not decayed."""
    decay = DEFAULT_WEIGHT_DECAY[name] if weight_decay is None else weight_decay
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if name == "sgd-momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def lr_factor(name: ScheduleName, total: int, warmup: int = 0) -> Callable[[int], float]:
    """Multiplier of the base learning rate at each step.

    * ``constant``: 1 (after an optional linear warm-up);
    * ``cosine``: linear warm-up, then half a cosine down to 0;
    * ``onecycle``: from lr/25 up to lr over the first quarter (or ``warmup``
      steps), then a cosine down to lr/250,000, as torch's OneCycleLR does
      (without its momentum cycling).
    """
    total = max(total, 1)
    if name == "onecycle":
        rise = warmup or max(1, round(0.25 * total))
        start, end = 1 / 25, 1 / 25 / 1e4

        def onecycle(step: int) -> float:
            if step < rise:
                return start + (1 - start) * step / rise
            t = min(1.0, (step - rise) / max(1, total - rise))
            return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))

        return onecycle

    def warmed(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if name == "constant":
            return 1.0
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * t))

    return warmed
