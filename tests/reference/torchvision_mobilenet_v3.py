"""torchvision's MobileNet v3 Large, written out by hand for tests only.

Follows ``torchvision/models/mobilenetv3.py`` of https://github.com/pytorch/vision
(read at commit 00542d95486feb18bda93ab6b8b7a694291151e9, whose
``SqueezeExcitation`` has the same modules and parameters as the later
``torchvision.ops.SqueezeExcitation``): the same modules in the same order,
batch norms with eps 0.001 and momentum 0.01, the same residual rule. Weight
loading and initialisation are left out. torchvision is not a dependency.
"""

from __future__ import annotations

import torch
from reference.torchvision_mobilenet_v2 import make_divisible
from torch import Tensor, nn
from torch.nn import functional as F


def conv_bn_act(inp: int, oup: int, kernel: int, stride: int = 1, groups: int = 1, act=None):
    layers: list[nn.Module] = [
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup, eps=0.001, momentum=0.01),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze_factor: int = 4) -> None:
        super().__init__()
        squeeze = make_divisible(channels // squeeze_factor, 8)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = self.fc2(self.relu(self.fc1(scale)))
        return F.hardsigmoid(scale) * x


class InvertedResidual(nn.Module):
    # kernel, expanded, out, use_se, activation ("RE" or "HS"), stride; all widths adjusted
    def __init__(self, inp: int, kernel: int, exp: int, out: int, se: bool, nl: str, stride: int):
        super().__init__()
        self.use_res_connect = stride == 1 and inp == out
        act = nn.Hardswish if nl == "HS" else nn.ReLU
        layers: list[nn.Module] = []
        if exp != inp:
            layers.append(conv_bn_act(inp, exp, 1, act=act))
        layers.append(conv_bn_act(exp, exp, kernel, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcitation(exp))
        layers.append(conv_bn_act(exp, out, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        return result + x if self.use_res_connect else result


LARGE = [  # input, kernel, expanded, out, use_se, activation, stride
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]


class MobileNetV3Large(nn.Module):
    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0) -> None:
        super().__init__()

        def adjust(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        layers: list[nn.Module] = [conv_bn_act(3, adjust(16), 3, 2, act=nn.Hardswish)]
        for inp, k, exp, out, se, nl, s in LARGE:
            layers.append(InvertedResidual(adjust(inp), k, adjust(exp), adjust(out), se, nl, s))
        last_in = adjust(160)
        layers.append(conv_bn_act(last_in, 6 * last_in, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last_channel = adjust(1280)
        self.classifier = nn.Sequential(
            nn.Linear(6 * last_in, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=0.2, inplace=True),
            nn.Linear(last_channel, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))
