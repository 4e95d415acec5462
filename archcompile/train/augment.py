"""Batch transforms of training: random flips and random erasing.

Each example's randomness is fixed by (seed, epoch, example index), drawn once
per epoch for the whole training set, so every process of a distributed run
and every resumed run transforms an example the same way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: random erasing as torchvision's RandomErasing: a rectangle of 2% to 33% of
#: the image, aspect ratio 0.3 to 3.3, set to 0 (the mean, after normalization)
ERASE_AREA = (0.02, 1 / 3)
ERASE_RATIO = (0.3, 10 / 3)


def _generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + salt)


def flips(seed: int, epoch: int, count: int) -> Tensor:
    """Which examples to mirror this epoch (probability 1/2)."""
    return torch.rand(count, generator=_generator(seed, epoch)) < 0.5


def erasing_draws(seed: int, epoch: int, count: int) -> Tensor:
    """Five uniform numbers per example: erase?, area, log aspect, top, left."""
    return torch.rand(count, 5, generator=_generator(seed, epoch, salt=1))


def erase(x: Tensor, draws: Tensor, probability: float) -> Tensor:
    """``x`` (N, C, H, W) with one rectangle set to 0 in each example whose
    first draw is below ``probability``; ``draws`` are that batch's rows of
    :func:`erasing_draws`."""
    n, _, height, width = x.shape
    draws = draws.to(x.device)
    area = height * width * (ERASE_AREA[0] + draws[:, 1] * (ERASE_AREA[1] - ERASE_AREA[0]))
    low, high = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
    aspect = torch.exp(low + draws[:, 2] * (high - low))
    h = torch.sqrt(area * aspect).round().clamp(1, height)
    w = torch.sqrt(area / aspect).round().clamp(1, width)
    top = (draws[:, 3] * (height - h + 1)).floor()
    left = (draws[:, 4] * (width - w + 1)).floor()
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    inside = (
        (rows >= top.view(n, 1, 1))
        & (rows < (top + h).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1))
        & (cols < (left + w).view(n, 1, 1))
    )
    mask = inside & (draws[:, 0] < probability).view(n, 1, 1)
    return x.masked_fill(mask.unsqueeze(1), 0.0)


class BatchTransforms:
    """The transforms of one epoch, applied to batches of example indices."""

    def __init__(self, config, epoch: int, count: int) -> None:
        self.flips = flips(config.seed, epoch, count) if config.augment else None
        self.erasing = config.random_erasing
        self.draws = erasing_draws(config.seed, epoch, count) if self.erasing else None

    def __call__(self, x: Tensor, batch: Tensor) -> Tensor:
        if self.flips is not None:
            x = torch.where(self.flips[batch].to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
        if self.draws is not None:
            x = erase(x, self.draws[batch], self.erasing)
        return x
