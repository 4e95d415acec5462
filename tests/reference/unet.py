"""U-Net (Ronneberger, Fischer and Brox, 2015), written by hand for tests only.

The network of the paper's Figure 1: a contracting path of two 3x3
convolutions with ReLU per level and 2x2 max pooling (64, 128, 256, 512 and
1024 channels), an expansive path of 2x2 up-convolutions that halve the
channels, each followed by a concatenation with the encoder's features of the
same level and two 3x3 convolutions, and a final 1x1 convolution to the
classes. One difference from the paper, as in most PyTorch ports: the 3x3
convolutions are padded (padding 1), so no cropping is needed before the
concatenation and the output has the input's size; the parameters are the
paper's either way.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def double_conv(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out, out, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """One level of the expansive path: up-convolution, concatenation with
    the encoder's features of the level, two 3x3 convolutions."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(inp, out, kernel_size=2, stride=2)
        self.conv = double_conv(2 * out, out)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 64) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(5)]  # 64 ... 1024
        self.downs = nn.ModuleList()
        inp = in_channels
        for w in widths:
            self.downs.append(double_conv(inp, w))
            inp = w
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.ups.append(Up(inp, w))
            inp = w
        self.head = nn.Conv2d(inp, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)
