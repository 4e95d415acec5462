"""Static shape inference, parameter and MAC counting, in pure Python.

``SHAPE_RULES[kind](layer, shape) -> shape`` and
``COUNT_RULES[kind](layer, in_shape, out_shape) -> (params, macs)`` are the
tables of this stage. Shapes exclude the batch dimension: ``(C, H, W)`` for
images, ``(F,)`` after ``flatten``. Rules also run on symbolic dimensions for
the code generator (see :mod:`archcompile.symbolic`), so checks only fire on
known integers.

MACs are multiply-accumulates of convolutions and linear layers per image, as
fvcore counts them (bias additions, norms, pools and activations count zero).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archcompile import layers as L
from archcompile import symbolic
from archcompile.symbolic import Dim, Expr, mul

if TYPE_CHECKING:
    from archcompile.ir import Graph

Shape = tuple[Dim, ...]


class ShapeProblem(Exception):
    """Raised by a rule; the walker adds the location and the shape trace."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def format_shape(shape: Shape, batch: int | str = "N") -> str:
    from archcompile.symbolic import render

    return "[" + ", ".join([str(batch), *(render(d) for d in shape)]) + "]"


def _image(layer: L.LayerSpec, shape: Shape) -> tuple[Dim, Dim, Dim]:
    if len(shape) != 3:
        raise ShapeProblem(
            f"{layer.kind} expects an image [N, C, H, W] but receives {format_shape(shape)}",
            "tokens [N, L, D] become an image with to_image"
            if len(shape) == 2
            else "image layers must come before 'flatten'",
        )
    return shape  # type: ignore[return-value]


def _known(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _window(
    size: Dim,
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil: Any,
    axis: str,
) -> Dim:
    """Output length of a sliding window, as torch computes it."""
    if not _known(kernel, stride, padding, dilation):
        return None
    span = dilation * (kernel - 1) + 1
    if isinstance(size, Expr):  # inside a generic class: only "unchanged" is expressible
        return size if stride == 1 and 2 * padding == span - 1 else None
    if size is None:
        return None
    if span > size + 2 * padding:
        raise ShapeProblem(
            f"kernel {span} is larger than the padded input {size + 2 * padding} ({axis}): "
            "the output would be empty",
            "use a larger input (--input), less downsampling, or padding",
        )
    out = (size + 2 * padding - span) // stride + 1
    if ceil is True and (size + 2 * padding - span) % stride:
        out += 1
        if (out - 1) * stride >= size + padding:  # torch drops a window starting in padding
            out -= 1
    if out < 1:  # pragma: no cover - unreachable given the check above
        raise ShapeProblem(f"{axis} collapses to {out}")
    return out


def _conv_shape(layer: L.Conv, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    if _known(c, layer.groups) and c % layer.groups:
        raise ShapeProblem(f"groups ({layer.groups}) must divide the input channels ({c})")
    kh, kw = L.pair(layer.kernel)
    sh, sw = L.pair(layer.stride)
    dh, dw = L.pair(layer.dilation)
    if layer.padding == "same":
        return (layer.out, h, w)
    ph, pw = (0, 0) if layer.padding == "valid" else L.pair(layer.padding)
    return (
        layer.out,
        _window(h, kh, sh, ph, dh, False, "height"),
        _window(w, kw, sw, pw, dw, False, "width"),
    )


def _pool_shape(layer: L.MaxPool | L.AvgPool, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    kh, kw = L.pair(layer.kernel)
    sh, sw = L.pair(layer.effective_stride)
    ph, pw = L.pair(layer.padding)
    return (
        c,
        _window(h, kh, sh, ph, 1, layer.ceil_mode, "height"),
        _window(w, kw, sw, pw, 1, layer.ceil_mode, "width"),
    )


def _conv_transpose_shape(layer: L.ConvTranspose, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    if _known(c, layer.groups) and c % layer.groups:
        raise ShapeProblem(f"groups ({layer.groups}) must divide the input channels ({c})")
    axes = zip(
        (h, w),
        L.pair(layer.kernel),
        L.pair(layer.stride),
        L.pair(layer.padding),
        L.pair(layer.dilation),
        L.pair(layer.output_padding),
        ("height", "width"),
    )
    return (layer.out, *(_transposed(*axis) for axis in axes))


def _transposed(size: Dim, kernel, stride, padding, dilation, extra, axis: str) -> Dim:
    """Output length of a transposed convolution, as torch computes it."""
    if size is None or not _known(kernel, stride, padding, dilation, extra):
        return None
    grown = dilation * (kernel - 1) + extra + 1 - 2 * padding
    out = (size + -1) * stride + grown  # an Expr stays linear
    if isinstance(out, int) and out < 1:
        raise ShapeProblem(
            f"the {axis} would be {out}: padding {padding} crops more than the "
            f"transposed convolution adds",
            "use less padding, or a larger kernel or stride",
        )
    return out


def _upsample_shape(layer: L.Upsample, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    if layer.size is not None:
        return (c, *L.pair(layer.size))
    sh, sw = L.pair(layer.scale)  # type: ignore[arg-type]
    return (c, mul(h, sh), mul(w, sw))


def _pixel_shuffle_shape(layer: L.PixelShuffle, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    f = layer.factor
    if _known(c, f) and c % (f * f):
        raise ShapeProblem(
            f"pixel_shuffle with factor {f} needs channels divisible by {f * f} "
            f"(factor squared), got {c}",
            f"give the conv before it a multiple of {f * f} output channels",
        )
    channels = _divided(c, f * f)
    return (channels, mul(h, f), mul(w, f))


def _channel_groups_shape(layer: L.ChannelShuffle | L.GroupNorm, shape: Shape) -> Shape:
    c = shape[0]
    if layer.kind == "channel_shuffle":
        _image(layer, shape)
    if _known(c, layer.groups) and c % layer.groups:
        raise ShapeProblem(
            f"{layer.kind} groups ({layer.groups}) must divide the channels ({c})",
            f"use a divisor of {c} as groups",
        )
    return shape


def _channel_split_shape(layer: L.ChannelSplit, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    if _known(c, layer.parts) and c % layer.parts:
        raise ShapeProblem(
            f"channel_split into {layer.parts} parts needs channels divisible by "
            f"{layer.parts}, got {c}",
            "torch's chunk would give parts of different sizes",
        )
    return (_divided(c, layer.parts), h, w)


def _divided(c: Dim, n: int) -> Dim:
    """``c // n`` for a divisible channel count: a number, or written so in
    generated source (``in_channels // 2``)."""
    return symbolic.divide("//", c, n)


def _global_pool_shape(layer: L.GlobalAvgPool, shape: Shape) -> Shape:
    c, _, _ = _image(layer, shape)
    return (c, 1, 1)


def _adaptive_pool_shape(layer: L.AdaptiveAvgPool, shape: Shape) -> Shape:
    c, _, _ = _image(layer, shape)
    return (c, *L.pair(layer.size))


def _same(layer: L.LayerSpec, shape: Shape) -> Shape:
    return shape


def _image_same(layer: L.LayerSpec, shape: Shape) -> Shape:
    _image(layer, shape)
    return shape


def _flatten_shape(layer: L.Flatten, shape: Shape) -> Shape:
    features: Dim = 1
    for dim in shape:
        features = mul(features, dim)
    return (features,)


def _linear_shape(layer: L.Linear, shape: Shape) -> Shape:
    if len(shape) == 3:
        raise ShapeProblem(
            f"linear expects [N, features] or tokens [N, L, D] but receives {format_shape(shape)}",
            "add '- flatten' before it",
        )
    return (*shape[:-1], layer.out)  # on the last axis of tokens


SHAPE_RULES: dict[str, Callable[[Any, Shape], Shape]] = {
    "conv": _conv_shape,
    "conv_transpose": _conv_transpose_shape,
    "maxpool": _pool_shape,
    "avgpool": _pool_shape,
    "global_avgpool": _global_pool_shape,
    "global_maxpool": _global_pool_shape,
    "adaptive_avgpool": _adaptive_pool_shape,
    "adaptive_maxpool": _adaptive_pool_shape,
    "upsample": _upsample_shape,
    "pixel_shuffle": _pixel_shuffle_shape,
    "channel_shuffle": _channel_groups_shape,
    "channel_split": _channel_split_shape,
    "batchnorm": _same,
    "groupnorm": _channel_groups_shape,
    "lrn": _image_same,
    "relu": _same,
    "leaky_relu": _same,
    "gelu": _same,
    "silu": _same,
    "sigmoid": _same,
    "tanh": _same,
    "relu6": _same,
    "hardswish": _same,
    "hardsigmoid": _same,
    "dropout": _same,
    "flatten": _flatten_shape,
    "linear": _linear_shape,
}


def _prod(values: Shape) -> int:
    total = 1
    for v in values:
        total *= v  # type: ignore[operator]
    return total


def _conv_counts(layer: L.Conv, inp: Shape, out: Shape) -> tuple[int, int]:
    kh, kw = L.pair(layer.kernel)
    per_output = (inp[0] // layer.groups) * kh * kw  # type: ignore[operator]
    params = layer.out * per_output + (layer.out if layer.has_bias else 0)
    return params + _norm_params(layer), _prod(out) * per_output


def _conv_transpose_counts(layer: L.ConvTranspose, inp: Shape, out: Shape) -> tuple[int, int]:
    """Weights [in, out / groups, kh, kw]; MACs as fvcore counts a transposed
    convolution: every weight once per input position."""
    kh, kw = L.pair(layer.kernel)
    weights = inp[0] * (layer.out // layer.groups) * kh * kw  # type: ignore[operator]
    params = weights + (layer.out if layer.has_bias else 0)
    return params + _norm_params(layer), weights * _prod(inp[1:])


def _norm_params(layer: L.Conv | L.ConvTranspose) -> int:
    """The scale and shift of a conv's norm (both norms are affine)."""
    return 0 if layer.norm is None else 2 * layer.out


def _groupnorm_counts(layer: L.GroupNorm, inp: Shape, out: Shape) -> tuple[int, int]:
    return (2 * inp[0] if layer.affine else 0), 0  # type: ignore[operator]


def _linear_counts(layer: L.Linear, inp: Shape, out: Shape) -> tuple[int, int]:
    features, positions = inp[-1], _prod(inp[:-1])  # tokens: once per token
    params = features * layer.out + (layer.out if layer.bias else 0)  # type: ignore[operator]
    return params, positions * features * layer.out  # type: ignore[operator]


def _batchnorm_counts(layer: L.BatchNorm, inp: Shape, out: Shape) -> tuple[int, int]:
    return 2 * inp[0], 0  # type: ignore[operator]


def _free(layer: L.LayerSpec, inp: Shape, out: Shape) -> tuple[int, int]:
    return 0, 0


COUNT_RULES: dict[str, Callable[[Any, Shape, Shape], tuple[int, int]]] = {
    "conv": _conv_counts,
    "conv_transpose": _conv_transpose_counts,
    "maxpool": _free,
    "avgpool": _free,
    "global_avgpool": _free,
    "global_maxpool": _free,
    "adaptive_avgpool": _free,
    "adaptive_maxpool": _free,
    "upsample": _free,  # no conv or linear MACs (fvcore counts 1 or 4 flops per output)
    "pixel_shuffle": _free,
    "channel_shuffle": _free,
    "channel_split": _free,
    "batchnorm": _batchnorm_counts,
    "groupnorm": _groupnorm_counts,
    "lrn": _free,
    "relu": _free,
    "leaky_relu": _free,
    "gelu": _free,
    "silu": _free,
    "sigmoid": _free,
    "tanh": _free,
    "relu6": _free,
    "hardswish": _free,
    "hardsigmoid": _free,
    "dropout": _free,
    "flatten": _free,
    "linear": _linear_counts,
}


def infer_shapes(graph: Graph) -> Any:
    """Shapes and counts of every node of ``graph`` (the annotated tree);
    raises :class:`ShapeError`."""
    from archcompile.tree import annotate

    return annotate(graph)


from archcompile.shapes_tokens import TOKEN_COUNT_RULES, TOKEN_SHAPE_RULES

SHAPE_RULES.update(TOKEN_SHAPE_RULES)
COUNT_RULES.update(TOKEN_COUNT_RULES)
