"""torchvision's RegNetY-400MF, written out by hand for tests only.

Follows ``torchvision/models/regnet.py`` of https://github.com/pytorch/vision
(read at commit 07a929e8b851242b1c75c9016ee06a8e502961d8) for
``regnet_y_400mf`` (depth 16, w_0 48, w_a 27.89, w_m 2.09, group width 8,
SE ratio 0.25). The stage widths and depths that ``BlockParams`` computes
from those are written out: widths 48, 104, 208, 440; depths 1, 3, 6, 6
(every width a multiple of the group width, so no adjustment). Weight
loading and initialisation are left out. torchvision is not a dependency.
"""

from __future__ import annotations

from torch import Tensor, nn

WIDTHS = (48, 104, 208, 440)
DEPTHS = (1, 3, 6, 6)
GROUP_WIDTH = 8
SE_RATIO = 0.25


def conv_bn(inp: int, oup: int, kernel: int, stride: int = 1, groups: int = 1, relu=True):
    layers: list[nn.Module] = [
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """``torchvision.ops.SqueezeExcitation`` with a ReLU and a sigmoid gate."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class ResBottleneckBlock(nn.Module):
    def __init__(self, width_in: int, width_out: int, stride: int) -> None:
        super().__init__()
        self.proj = None
        if width_in != width_out or stride != 1:
            self.proj = conv_bn(width_in, width_out, 1, stride, relu=False)
        w_b = width_out  # bottleneck multiplier 1.0
        self.f = nn.Sequential(
            conv_bn(width_in, w_b, 1),
            conv_bn(w_b, w_b, 3, stride, groups=w_b // GROUP_WIDTH),
            SqueezeExcitation(w_b, round(SE_RATIO * width_in)),  # int(round(...))
            conv_bn(w_b, width_out, 1, relu=False),
        )
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.activation(shortcut + self.f(x))


class RegNetY400MF(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        stages = []
        width = 32
        for out, depth in zip(WIDTHS, DEPTHS):
            blocks = [
                ResBottleneckBlock(width if i == 0 else out, out, 2 if i == 0 else 1)
                for i in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            width = out
        self.trunk_output = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.trunk_output(self.stem(x)))
        return self.fc(x.flatten(start_dim=1))
