"""Stochastic depth, as torchvision.ops.StochasticDepth (Huang et al., 2016)."""

import torch
from torch import Tensor, nn


class StochasticDepth(nn.Module):
    """Drops the whole residual branch of a sample (mode "row") or of the batch
    (mode "batch") with probability p in training, scaling what survives by
    1 / (1 - p); the identity in eval mode."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [1] * x.dim()
        if self.mode == "row":
            size[0] = x.size(0)
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
