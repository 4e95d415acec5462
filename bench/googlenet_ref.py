"""A hand-written PyTorch GoogLeNet: the reference ``make bench`` compares archc with.

The same network as ``specs/googlenet.yaml`` (the Fashion-MNIST tutorial's
GoogLeNet: conv + bias + ReLU, no BatchNorm, 1 x 96 x 96 inputs), written as
one would by hand, without archc: an ``Inception`` module with four branches
and ``nn.Sequential`` stages. 5,977,530 parameters, as archc counts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _conv(cin: int, cout: int, kernel: int, **kwargs) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, **kwargs), nn.ReLU(inplace=True)]


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c2: tuple, c3: tuple, c4: int) -> None:
        super().__init__()
        self.p1 = nn.Sequential(*_conv(cin, c1, 1))
        self.p2 = nn.Sequential(*_conv(cin, c2[0], 1), *_conv(c2[0], c2[1], 3, padding=1))
        self.p3 = nn.Sequential(*_conv(cin, c3[0], 1), *_conv(c3[0], c3[1], 5, padding=2))
        self.p4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_conv(cin, c4, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], dim=1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.b1 = nn.Sequential(*_conv(1, 64, 7, stride=2, padding=3), nn.MaxPool2d(3, 2))
        self.b2 = nn.Sequential(
            *_conv(64, 64, 1), *_conv(64, 192, 3, padding=1), nn.MaxPool2d(3, 2)
        )
        self.b3 = nn.Sequential(
            Inception(192, 64, (96, 128), (16, 32), 32),
            Inception(256, 128, (128, 192), (32, 96), 64),
            nn.MaxPool2d(3, 2),
        )
        self.b4 = nn.Sequential(
            Inception(480, 192, (96, 208), (16, 48), 64),
            Inception(512, 160, (112, 224), (24, 64), 64),
            Inception(512, 128, (128, 256), (24, 64), 64),
            Inception(512, 112, (144, 288), (32, 64), 64),
            Inception(528, 256, (160, 320), (32, 128), 128),
            nn.MaxPool2d(3, 2),
        )
        self.b5 = nn.Sequential(
            Inception(832, 256, (160, 320), (32, 128), 128),
            Inception(832, 384, (192, 384), (48, 128), 128),
            nn.MaxPool2d(2, 2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(1024, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.b5(self.b4(self.b3(self.b2(self.b1(x))))))
