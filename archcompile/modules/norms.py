"""Norms and scales over channels for ConvNeXt (Liu et al., 2022)."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of an image [N, C, H, W] (channels first),
    as torchvision's ConvNeXt uses it."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """Multiplies each channel by a learnable scale, initially ``init``: the
    last axis of tokens, or the channels of an image (``channels_first``)."""

    def __init__(
        self, dim: int, init: float = 1e-6, channels_first: bool = False
    ) -> None:
        super().__init__()
        shape = [dim, 1, 1] if channels_first else [dim]
        self.gamma = nn.Parameter(torch.full(shape, init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma
