"""``--ema DECAY``: an exponential moving average of the weights.

After each optimizer step the average moves towards the weights by
``1 - d``, with ``d = min(DECAY, (1 + t) / (10 + t))`` at update ``t`` (as
TensorFlow's ExponentialMovingAverage with ``num_updates``: early updates
follow the weights closely). Buffers (BatchNorm's running statistics) are
copied. Evaluations and checkpoints' ``model.safetensors`` use the average;
the weights being trained are kept in ``optimizer.safetensors`` for
``--resume``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

#: prefix of the trained weights in ``optimizer.safetensors`` when EMA is on
TRAINED = "trained."


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)

    def rate(self) -> float:
        """The decay of the next update."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.rate()
        self.updates += 1
        for average, weight in zip(self.model.parameters(), model.parameters()):
            average.lerp_(weight.detach(), 1.0 - d)
        for average, buffer in zip(self.model.buffers(), model.buffers()):
            average.copy_(buffer)
