"""The one lowering: what torch modules each layer kind becomes.

``LOWERING[kind](layer, in_shape) -> list[ModuleCall]`` states, for one layer
and the shape it receives, the module constructors it stands for and their
arguments. Arguments are plain values or :class:`~archcompile.symbolic.Expr`
(inside a generated class, ``c2_reduce`` instead of ``96``). Both backends read
this table and nothing else: the live backend instantiates each call
(:func:`archcompile.backends.torch_build.instantiate`), the source backend
prints it (:func:`archcompile.backends.codegen_print.module_source`). Neither
knows a layer kind.

This module does not import torch: a call names its constructor as the
attribute of ``torch.nn`` (``"Conv2d"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archcompile import layers as L
from archcompile.norms import check_norm
from archcompile.symbolic import Expr

Shape = tuple[Any, ...]


@dataclass(frozen=True)
class ModuleCall:
    """``nn.<ctor>(*args, **kwargs)``, and the role of the module in its layer.

    ``role`` names the module when a named layer lowers to several
    (``conv``, ``bn``, ``relu``: torchvision's ``BasicConv2d`` keys).
    Keyword arguments equal to torch's defaults are left out, so that the
    printed call reads like hand-written code.
    """

    ctor: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    role: str = ""


def _kw(defaults: dict[str, Any], **given: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments that differ from torch's defaults (symbols always stay)."""
    return tuple(
        (name, value)
        for name, value in given.items()
        if isinstance(value, Expr) or value != defaults.get(name, object())
    )


#: activations usable as a layer and as ``activation:`` of conv and linear:
#: kind -> (torch constructor, takes ``inplace``)
ACTIVATIONS: dict[str, tuple[str, bool]] = {
    "relu": ("ReLU", True),
    "leaky_relu": ("LeakyReLU", True),
    "gelu": ("GELU", False),
    "silu": ("SiLU", True),
    "sigmoid": ("Sigmoid", False),
    "tanh": ("Tanh", False),
    "relu6": ("ReLU6", True),
    "hardswish": ("Hardswish", True),
    "hardsigmoid": ("Hardsigmoid", True),
}


def activation(kind: str | None) -> list[ModuleCall]:
    """The module of an ``activation:`` field. It runs in place where torch
    allows it: its input is the fresh output of its own conv or linear (a
    standalone activation layer never does: its input may be shared)."""
    if kind is None:
        return []
    ctor, inplace = ACTIVATIONS[kind]
    return [ModuleCall(ctor, kwargs=(("inplace", True),) if inplace else (), role=kind)]


def _conv(layer: L.Conv, shape: Shape) -> list[ModuleCall]:
    conv = ModuleCall(
        "Conv2d",
        (shape[0], layer.out),
        (("kernel_size", layer.kernel),)
        + _kw(
            {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias if isinstance(layer.bias, Expr) else layer.has_bias,
        ),
        role="conv",
    )
    return [conv, *_norm(layer), *activation(layer.activation)]


def _conv_transpose(layer: L.ConvTranspose, shape: Shape) -> list[ModuleCall]:
    defaults = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True}
    conv = ModuleCall(
        "ConvTranspose2d",
        (shape[0], layer.out),
        (("kernel_size", layer.kernel),)
        + _kw(
            defaults | {"dilation": 1},
            stride=layer.stride,
            padding=layer.padding,
            output_padding=layer.output_padding,
            groups=layer.groups,
            bias=layer.bias if isinstance(layer.bias, Expr) else layer.has_bias,
            dilation=layer.dilation,
        ),
        role="conv",
    )
    return [conv, *_norm(layer), *activation(layer.activation)]


def _norm(layer: L.Conv | L.ConvTranspose) -> list[ModuleCall]:
    """The norm after a convolution, with the arguments given (the others are torch's)."""
    if layer.norm is None:
        return []
    norm = check_norm(layer.norm)  # (a layer validated later may hold it as written)
    if norm.kind == "group":
        kwargs = _kw({"eps": None}, eps=norm.eps)
        return [ModuleCall("GroupNorm", (norm.groups, layer.out), kwargs, role="gn")]
    kwargs = _kw({"eps": None, "momentum": None}, eps=norm.eps, momentum=norm.momentum)
    return [ModuleCall("BatchNorm2d", (layer.out,), kwargs, role="bn")]


def _pool(ctor: str) -> Callable[[Any, Shape], list[ModuleCall]]:
    def lower(layer: L.MaxPool | L.AvgPool, shape: Shape) -> list[ModuleCall]:
        extra = {"count_include_pad": layer.count_include_pad} if ctor == "AvgPool2d" else {}
        kwargs = (("kernel_size", layer.kernel),) + _kw(
            {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True},
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
            **extra,
        )
        return [ModuleCall(ctor, kwargs=kwargs, role="pool")]

    return lower


def _batchnorm(layer: L.BatchNorm, shape: Shape) -> list[ModuleCall]:
    ctor = "BatchNorm2d" if len(shape) == 3 else "BatchNorm1d"
    kwargs = _kw({"eps": 1e-5, "momentum": 0.1}, eps=layer.eps, momentum=layer.momentum)
    return [ModuleCall(ctor, (shape[0],), kwargs, role="bn")]


def _lrn(layer: L.LRN, shape: Shape) -> list[ModuleCall]:
    kwargs = _kw(
        {"alpha": 1e-4, "beta": 0.75, "k": 1.0}, alpha=layer.alpha, beta=layer.beta, k=layer.k
    )
    return [ModuleCall("LocalResponseNorm", (layer.size,), kwargs, role="lrn")]


def _linear(layer: L.Linear, shape: Shape) -> list[ModuleCall]:
    kwargs = _kw({"bias": True}, bias=layer.bias)
    linear = ModuleCall("Linear", (shape[-1], layer.out), kwargs, role="linear")
    return [linear, *activation(layer.activation)]


def _plain(ctor: str, role: str) -> Callable[[Any, Shape], list[ModuleCall]]:
    return lambda layer, shape: [ModuleCall(ctor, role=role)]


def _adaptive(ctor: str) -> Callable[[Any, Shape], list[ModuleCall]]:
    def lower(layer: L.AdaptiveAvgPool | L.AdaptiveMaxPool, shape: Shape) -> list[ModuleCall]:
        size = (1, 1) if layer.kind.startswith("global") else L.pair(layer.size)
        return [ModuleCall(ctor, (size,), role="pool")]

    return lower


def _upsample(layer: L.Upsample, shape: Shape) -> list[ModuleCall]:
    given = {"size": layer.size} if layer.size is not None else {"scale_factor": layer.scale}
    kwargs = tuple(given.items()) + _kw(
        {"mode": "nearest", "align_corners": None},
        mode=layer.mode,
        align_corners=layer.align_corners,
    )
    return [ModuleCall("Upsample", kwargs=kwargs, role="upsample")]


def _groupnorm(layer: L.GroupNorm, shape: Shape) -> list[ModuleCall]:
    kwargs = _kw({"eps": 1e-5, "affine": True}, eps=layer.eps, affine=layer.affine)
    return [ModuleCall("GroupNorm", (layer.groups, shape[0]), kwargs, role="gn")]


LOWERING: dict[str, Callable[[Any, Shape], list[ModuleCall]]] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "maxpool": _pool("MaxPool2d"),
    "avgpool": _pool("AvgPool2d"),
    "global_avgpool": _adaptive("AdaptiveAvgPool2d"),
    "global_maxpool": _adaptive("AdaptiveMaxPool2d"),
    "adaptive_avgpool": _adaptive("AdaptiveAvgPool2d"),
    "adaptive_maxpool": _adaptive("AdaptiveMaxPool2d"),
    "upsample": _upsample,
    "pixel_shuffle": lambda layer, shape: [
        ModuleCall("PixelShuffle", (layer.factor,), role="shuffle")
    ],
    "channel_shuffle": lambda layer, shape: [
        ModuleCall("ChannelShuffle", (layer.groups,), role="shuffle")
    ],
    "channel_split": lambda layer, shape: [
        ModuleCall("archc:ChannelSplit", (layer.parts, layer.index), role="split")
    ],
    "batchnorm": _batchnorm,
    "groupnorm": _groupnorm,
    "lrn": _lrn,
    "relu": _plain("ReLU", "relu"),
    "leaky_relu": lambda layer, shape: [
        ModuleCall(
            "LeakyReLU",
            kwargs=_kw({"negative_slope": 0.01}, negative_slope=layer.negative_slope),
            role="leaky_relu",
        )
    ],
    "gelu": lambda layer, shape: [
        ModuleCall(
            "GELU", kwargs=_kw({"approximate": "none"}, approximate=layer.approximate), role="gelu"
        )
    ],
    "silu": _plain("SiLU", "silu"),
    "sigmoid": _plain("Sigmoid", "sigmoid"),
    "tanh": _plain("Tanh", "tanh"),
    "relu6": _plain("ReLU6", "relu6"),
    "hardswish": _plain("Hardswish", "hardswish"),
    "hardsigmoid": _plain("Hardsigmoid", "hardsigmoid"),
    "dropout": lambda layer, shape: [
        ModuleCall("Dropout", kwargs=(("p", layer.p),), role="dropout")
    ],
    "flatten": _plain("Flatten", "flatten"),
    "linear": _linear,
}


from archcompile.lowering_tokens import TOKEN_LOWERING

LOWERING.update(TOKEN_LOWERING)
