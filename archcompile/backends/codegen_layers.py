"""Per-kind source arguments for the code generator.

``LAYER_ARGS[kind](layer, in_shape)`` returns the strings that
``templates/layers/<kind>.py.j2`` lays out as module expressions, one per
line. Values may be symbolic (:class:`~archcompile.symbolic.Expr`) inside a
generated composite class; :func:`src` renders them as Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archcompile import layers as L
from archcompile.backends.layout import INPLACE_ACTIVATIONS
from archcompile.backends.pytext import py_string
from archcompile.shapes import Shape
from archcompile.symbolic import Expr


class Unexpressible(Exception):
    """A value the generated source cannot state (the message says which)."""


def src(value: Any) -> str:
    """Python source for a value: ints, floats, bools, strings, tuples, Exprs."""
    if value is None:
        raise Unexpressible("a size that depends on the input's height and width")
    if isinstance(value, Expr):
        return value.render()
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return py_string(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(src(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"cannot render {value!r}")  # pragma: no cover


def _kw(args: list[str], name: str, value: Any, default: Any) -> None:
    if isinstance(value, Expr) or value != default:
        args.append(f"{name}={src(value)}")


_ACTIVATION_SRC = {
    "relu": "nn.ReLU({})",
    "leaky_relu": "nn.LeakyReLU({})",
    "gelu": "nn.GELU()",
    "silu": "nn.SiLU({})",
    "sigmoid": "nn.Sigmoid()",
    "tanh": "nn.Tanh()",
}


def activation_src(name: Any) -> str | None:
    """Source of an activation given as ``activation:`` of a conv or linear."""
    if name is None:
        return None
    if isinstance(name, Expr):
        raise Unexpressible("an activation chosen by a parameter")
    return _ACTIVATION_SRC[name].format("inplace=True" if name in INPLACE_ACTIVATIONS else "")


def _conv(layer: L.Conv, shape: Shape) -> dict[str, Any]:
    if isinstance(layer.norm, Expr):
        raise Unexpressible("a norm chosen by a parameter")
    args = [src(shape[0]), src(layer.out), f"kernel_size={src(layer.kernel)}"]
    _kw(args, "stride", layer.stride, 1)
    _kw(args, "padding", layer.padding, 0)
    _kw(args, "dilation", layer.dilation, 1)
    _kw(args, "groups", layer.groups, 1)
    if isinstance(layer.bias, Expr):
        args.append(f"bias={src(layer.bias)}")
    elif not layer.has_bias:
        args.append("bias=False")
    return {
        "conv": ", ".join(args),
        "norm": src(layer.out) if layer.norm == "batch" else None,
        "activation": activation_src(layer.activation),
    }


def _pool(layer: L.MaxPool | L.AvgPool, shape: Shape) -> dict[str, Any]:
    args = [f"kernel_size={src(layer.kernel)}"]
    _kw(args, "stride", layer.stride, None)
    _kw(args, "padding", layer.padding, 0)
    _kw(args, "ceil_mode", layer.ceil_mode, False)
    if isinstance(layer, L.AvgPool):
        _kw(args, "count_include_pad", layer.count_include_pad, True)
    return {"args": ", ".join(args)}


def _batchnorm(layer: L.BatchNorm, shape: Shape) -> dict[str, Any]:
    args = [src(shape[0])]
    _kw(args, "eps", layer.eps, 1e-5)
    _kw(args, "momentum", layer.momentum, 0.1)
    return {
        "cls": "nn.BatchNorm2d" if len(shape) == 3 else "nn.BatchNorm1d",
        "args": ", ".join(args),
    }


def _lrn(layer: L.LRN, shape: Shape) -> dict[str, Any]:
    args = [src(layer.size)]
    _kw(args, "alpha", layer.alpha, 1e-4)
    _kw(args, "beta", layer.beta, 0.75)
    _kw(args, "k", layer.k, 1.0)
    return {"args": ", ".join(args)}


def _leaky_relu(layer: L.LeakyReLU, shape: Shape) -> dict[str, Any]:
    args: list[str] = []
    _kw(args, "negative_slope", layer.negative_slope, 0.01)
    return {"args": ", ".join(args)}


def _linear(layer: L.Linear, shape: Shape) -> dict[str, Any]:
    args = [src(shape[0]), src(layer.out)]
    _kw(args, "bias", layer.bias, True)
    return {"args": ", ".join(args), "activation": activation_src(layer.activation)}


def _none(layer: L.LayerSpec, shape: Shape) -> dict[str, Any]:
    return {}


LAYER_ARGS: dict[str, Callable[[Any, Shape], dict[str, Any]]] = {
    "conv": _conv,
    "maxpool": _pool,
    "avgpool": _pool,
    "global_avgpool": _none,
    "batchnorm": _batchnorm,
    "lrn": _lrn,
    "relu": _none,
    "leaky_relu": _leaky_relu,
    "gelu": _none,
    "silu": _none,
    "sigmoid": _none,
    "tanh": _none,
    "dropout": lambda layer, shape: {"p": src(layer.p)},
    "flatten": _none,
    "linear": _linear,
}
