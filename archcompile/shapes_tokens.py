"""Shape and count rules of the token kinds (:mod:`archcompile.layers_tokens`),
merged into ``SHAPE_RULES`` and ``COUNT_RULES`` by :mod:`archcompile.shapes`.

Sequences are ``(L, D)``: ``L`` tokens of width ``D``, without the batch.
MACs follow fvcore: linear layers count ``L * in * out``; attention counts
its two projections and its two matrix products (``q @ k^T`` and
``weights @ v``, ``L * L * D`` each), as fvcore counts ``matmul``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from archcompile import layers as L
from archcompile import layers_tokens as T
from archcompile.shapes import ShapeProblem, _image, _known, format_shape
from archcompile.symbolic import Dim, mul

Shape = tuple[Dim, ...]


def tokens(layer: L.LayerSpec, shape: Shape) -> tuple[Dim, Dim]:
    """The (length, width) of a sequence; a located problem for anything else."""
    if len(shape) != 2:
        raise ShapeProblem(
            f"{layer.kind} expects tokens [N, L, D] but receives {format_shape(shape)}",
            "an image becomes tokens with patch_embed or to_tokens"
            if len(shape) == 3
            else "a vector has no tokens: token layers come before flatten, token_mean "
            "and take_token",
        )
    return shape  # type: ignore[return-value]


def _patch_embed_shape(layer: T.PatchEmbed, shape: Shape) -> Shape:
    _, h, w = _image(layer, shape)
    ph, pw = L.pair(layer.patch)
    for size, patch, axis in ((h, ph, "height"), (w, pw, "width")):
        if _known(size) and size % patch:
            raise ShapeProblem(
                f"patch {patch} does not divide the image {axis} {size}",
                "choose a patch size that divides the input, or resize the input (--input)",
            )
    if not _known(h, w):
        return (None, layer.out)
    return ((h // ph) * (w // pw), layer.out)


def _to_tokens_shape(layer: T.ToTokens, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    return (mul(h, w), c)


def image_size(layer: T.ToImage, length: Dim) -> tuple[Dim, Dim]:
    """The (height, width) ``to_image`` makes of ``length`` tokens."""
    h, w = layer.height, layer.width
    if not _known(length):
        return h, w
    if h is None and w is None:
        side = math.isqrt(length)  # type: ignore[arg-type]
        if side * side != length:
            raise ShapeProblem(
                f"to_image needs a square number of tokens for a square image, got {length}",
                "give height and width",
            )
        return side, side
    h = h if h is not None else (length // w if length % w == 0 else 0)  # type: ignore[operator]
    w = w if w is not None else (length // h if h and length % h == 0 else 0)  # type: ignore[operator]
    if h * w != length:  # type: ignore[operator]
        raise ShapeProblem(
            f"to_image: {length} tokens do not make an image of that height and width"
        )
    return h, w


def _to_image_shape(layer: T.ToImage, shape: Shape) -> Shape:
    length, dim = tokens(layer, shape)
    return (dim, *image_size(layer, length))


def _transpose_shape(layer: T.Transpose, shape: Shape) -> Shape:
    length, dim = tokens(layer, shape)
    return (dim, length)


def _layernorm_shape(layer: T.LayerNorm, shape: Shape) -> Shape:
    if layer.channels_first:
        _image(layer, shape)
    elif len(shape) == 3:
        raise ShapeProblem(
            f"layernorm normalizes the last axis, but receives an image {format_shape(shape)}",
            "set channels_first: true to normalize an image's channels",
        )
    return shape


def _attention_shape(layer: T.Attention, shape: Shape) -> Shape:
    _, dim = tokens(layer, shape)
    if _known(dim) and dim % layer.heads:
        raise ShapeProblem(
            f"attention heads ({layer.heads}) must divide the width ({dim})",
            "choose a number of heads that divides the token width",
        )
    return shape


def grid(layer: L.LayerSpec, length: Dim) -> tuple[Dim, Dim]:
    """The square grid (side, side) of ``length`` tokens, when known."""
    if not _known(length):
        return None, None
    side = math.isqrt(length)  # type: ignore[arg-type]
    if side * side != length:
        raise ShapeProblem(
            f"{layer.kind} needs a square grid of tokens, got {length} tokens",
            "use an image input whose height and width are equal",
        )
    return side, side


def _window_attention_shape(layer: T.WindowAttention, shape: Shape) -> Shape:
    _attention_shape(layer, shape)  # type: ignore[arg-type]
    side, _ = grid(layer, shape[0])
    if _known(side, layer.window) and side % layer.window:
        raise ShapeProblem(
            f"window {layer.window} does not divide the grid of {side}x{side} tokens",
            "choose a window that divides the grid, or another input size",
        )
    return shape


def _merge_patches_shape(layer: T.MergePatches, shape: Shape) -> Shape:
    length, dim = tokens(layer, shape)
    side, _ = grid(layer, length)
    if _known(side) and side % 2:
        raise ShapeProblem(f"merge_patches needs an even grid, got {side}x{side} tokens")
    return (None if side is None else (side // 2) ** 2, mul(dim, 4))


def _cls_token_shape(layer: T.ClsToken, shape: Shape) -> Shape:
    length, dim = tokens(layer, shape)
    return (None if length is None else length + 1, dim)


def _tokens_same(layer: L.LayerSpec, shape: Shape) -> Shape:
    tokens(layer, shape)
    return shape


def _pool_tokens_shape(layer: T.TokenMean | T.TakeToken, shape: Shape) -> Shape:
    length, dim = tokens(layer, shape)
    index = getattr(layer, "index", 0)
    if _known(length) and index >= length:
        raise ShapeProblem(f"take_token index {index} is out of range for {length} tokens")
    return (dim,)


def _any(layer: L.LayerSpec, shape: Shape) -> Shape:
    return shape


TOKEN_SHAPE_RULES: dict[str, Callable[[Any, Shape], Shape]] = {
    "stochastic_depth": _any,
    "patch_embed": _patch_embed_shape,
    "to_tokens": _to_tokens_shape,
    "to_image": _to_image_shape,
    "transpose": _transpose_shape,
    "layernorm": _layernorm_shape,
    "attention": _attention_shape,
    "window_attention": _window_attention_shape,
    "merge_patches": _merge_patches_shape,
    "cls_token": _cls_token_shape,
    "pos_embedding": _tokens_same,
    "layer_scale": _any,
    "token_mean": _pool_tokens_shape,
    "take_token": _pool_tokens_shape,
}


def width(shape: Shape) -> Dim:
    """Channels of an image, width of tokens, features of a vector."""
    return shape[-1] if len(shape) == 2 else shape[0]


def _free(layer: L.LayerSpec, inp: Shape, out: Shape) -> tuple[int, int]:
    return 0, 0


def _patch_embed_counts(layer: T.PatchEmbed, inp: Shape, out: Shape) -> tuple[int, int]:
    ph, pw = L.pair(layer.patch)
    per_output = inp[0] * ph * pw  # type: ignore[operator]
    params = layer.out * per_output + (layer.out if layer.bias else 0)
    return params, out[0] * layer.out * per_output  # type: ignore[operator]


def _attention_counts(layer: T.Attention, inp: Shape, out: Shape) -> tuple[int, int]:
    length, dim = inp
    params = 4 * dim * dim + (3 * dim if layer.qkv_bias else 0) + dim  # type: ignore[operator]
    projections = length * 4 * dim * dim  # type: ignore[operator]
    products = 2 * length * length * dim  # type: ignore[operator]
    return params, projections + products


def _window_attention_counts(layer: T.WindowAttention, inp: Shape, out: Shape) -> tuple[int, int]:
    length, dim = inp
    table = (2 * layer.window - 1) ** 2 * layer.heads
    params = 4 * dim * dim + 4 * dim + table  # type: ignore[operator]
    products = 2 * length * layer.window**2 * dim  # type: ignore[operator]
    return params, length * 4 * dim * dim + products  # type: ignore[operator]


def _width_params(factor: int) -> Callable[[Any, Shape, Shape], tuple[int, int]]:
    return lambda layer, inp, out: (factor * width(inp), 0)  # type: ignore[operator]


def _pos_embedding_counts(layer: T.PosEmbedding, inp: Shape, out: Shape) -> tuple[int, int]:
    return inp[0] * inp[1], 0  # type: ignore[operator]


TOKEN_COUNT_RULES: dict[str, Callable[[Any, Shape, Shape], tuple[int, int]]] = {
    "stochastic_depth": _free,
    "patch_embed": _patch_embed_counts,
    "to_tokens": _free,
    "to_image": _free,
    "transpose": _free,
    "layernorm": _width_params(2),
    "attention": _attention_counts,
    "window_attention": _window_attention_counts,
    "merge_patches": _free,
    "cls_token": _width_params(1),
    "pos_embedding": _pos_embedding_counts,
    "layer_scale": _width_params(1),
    "token_mean": _free,
    "take_token": _free,
}
