"""torchvision's EfficientNet-B0, written out by hand for tests only.

Follows ``torchvision/models/efficientnet.py`` of https://github.com/pytorch/vision
(read at commit 07a929e8b851242b1c75c9016ee06a8e502961d8): MBConv blocks
(expansion, depthwise conv, squeeze-and-excitation with SiLU and a sigmoid
gate, projection), stochastic depth on the residual branch with a
probability rising linearly to 0.2, stages as ``nn.Sequential``. B0 uses
``nn.BatchNorm2d``'s defaults (eps 1e-5); only B5 to B7 pass eps 0.001.
Weight loading and initialisation are left out. torchvision is not a
dependency.
"""

from __future__ import annotations

import torch
from reference.torchvision_mobilenet_v2 import make_divisible
from torch import Tensor, nn


def stochastic_depth(x: Tensor, p: float, training: bool) -> Tensor:
    """``torchvision.ops.stochastic_depth`` in "row" mode."""
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
    noise = noise.bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return x * noise


class StochasticDepth(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return stochastic_depth(x, self.p, self.training)


def conv_bn_act(inp: int, oup: int, kernel: int, stride: int = 1, groups: int = 1, act=True):
    layers: list[nn.Module] = [
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
    ]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """``torchvision.ops.SqueezeExcitation`` with a SiLU and a sigmoid gate."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class MBConv(nn.Module):
    def __init__(self, inp: int, out: int, t: int, kernel: int, stride: int, p: float) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and inp == out
        expanded = make_divisible(inp * t, 8)
        layers: list[nn.Module] = []
        if expanded != inp:
            layers.append(conv_bn_act(inp, expanded, 1))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded))
        layers.append(SqueezeExcitation(expanded, max(1, inp // 4)))
        layers.append(conv_bn_act(expanded, out, 1, act=False))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(p)

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + x
        return result


B0 = [  # expand_ratio, kernel, stride, input, out, layers
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]


class EfficientNetB0(nn.Module):
    def __init__(self, num_classes: int = 1000, stochastic_depth_prob: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 32, 3, 2)]
        total = sum(n for *_, n in B0)
        block_id = 0
        for t, k, s, inp, out, n in B0:
            stage = []
            for i in range(n):
                p = stochastic_depth_prob * block_id / total
                stage.append(MBConv(inp if i == 0 else out, out, t, k, s if i == 0 else 1, p))
                block_id += 1
            layers.append(nn.Sequential(*stage))
        layers.append(conv_bn_act(320, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.2, inplace=True), nn.Linear(1280, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))
