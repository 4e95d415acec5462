"""What the token kinds (:mod:`archcompile.layers_tokens`) become, merged into
``LOWERING`` by :mod:`archcompile.lowering`.

Most become archc's own module classes (``archc:<Class>``, written once in
:mod:`archcompile.modules`), which both backends use from the same source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archcompile import layers as L
from archcompile import layers_tokens as T
from archcompile.lowering import ModuleCall, _kw
from archcompile.shapes import SHAPE_RULES  # first: it loads shapes_tokens whole
from archcompile.shapes_tokens import grid, image_size, width

Shape = tuple[Any, ...]


def _stochastic_depth(layer: T.StochasticDepth, shape: Shape) -> list[ModuleCall]:
    kwargs = _kw({"mode": "row"}, mode=layer.mode)
    return [ModuleCall("archc:StochasticDepth", (layer.p,), kwargs, role="stochastic_depth")]


def _patch_embed(layer: T.PatchEmbed, shape: Shape) -> list[ModuleCall]:
    patch = layer.patch
    kwargs = (("kernel_size", patch), ("stride", patch)) + _kw({"bias": True}, bias=layer.bias)
    conv = ModuleCall("Conv2d", (shape[0], layer.out), kwargs, role="conv")
    return [conv, ModuleCall("archc:ToTokens", role="tokens")]


def _to_image(layer: T.ToImage, shape: Shape) -> list[ModuleCall]:
    return [ModuleCall("archc:ToImage", image_size(layer, shape[0]), role="to_image")]


def _layernorm(layer: T.LayerNorm, shape: Shape) -> list[ModuleCall]:
    ctor = "archc:LayerNorm2d" if layer.channels_first else "LayerNorm"
    kwargs = _kw({"eps": 1e-5}, eps=layer.eps)
    return [ModuleCall(ctor, (width(shape),), kwargs, role="ln")]


def _attention(layer: T.Attention, shape: Shape) -> list[ModuleCall]:
    kwargs = _kw({"qkv_bias": True, "dropout": 0.0}, qkv_bias=layer.qkv_bias, dropout=layer.dropout)
    return [ModuleCall("archc:Attention", (shape[1], layer.heads), kwargs, role="attention")]


def _window_attention(layer: T.WindowAttention, shape: Shape) -> list[ModuleCall]:
    side, _ = grid(layer, shape[0])
    args = (shape[1], layer.heads, side, side, layer.window)
    kwargs = _kw({"shift": 0}, shift=layer.shift)
    return [ModuleCall("archc:WindowAttention", args, kwargs, role="attention")]


def _merge_patches(layer: T.MergePatches, shape: Shape) -> list[ModuleCall]:
    return [ModuleCall("archc:MergePatches", grid(layer, shape[0]), role="merge")]


def _layer_scale(layer: T.LayerScale, shape: Shape) -> list[ModuleCall]:
    kwargs = _kw({"init": 1e-6, "channels_first": False}, init=layer.init)
    if len(shape) == 3:
        kwargs += (("channels_first", True),)
    return [ModuleCall("archc:LayerScale", (width(shape),), kwargs, role="layer_scale")]


def _own(ctor: str, role: str) -> Callable[[Any, Shape], list[ModuleCall]]:
    return lambda layer, shape: [ModuleCall(f"archc:{ctor}", role=role)]


def _take_token(layer: T.TakeToken, shape: Shape) -> list[ModuleCall]:
    args = (layer.index,) if layer.index else ()
    return [ModuleCall("archc:TakeToken", args, role="take_token")]


TOKEN_LOWERING: dict[str, Callable[[Any, Shape], list[ModuleCall]]] = {
    "stochastic_depth": _stochastic_depth,
    "patch_embed": _patch_embed,
    "to_tokens": _own("ToTokens", "to_tokens"),
    "to_image": _to_image,
    "transpose": _own("Transpose", "transpose"),
    "layernorm": _layernorm,
    "attention": _attention,
    "cls_token": lambda layer, shape: [ModuleCall("archc:ClsToken", (shape[1],), role="cls_token")],
    "pos_embedding": lambda layer, shape: [
        ModuleCall("archc:PosEmbedding", tuple(shape), role="pos_embedding")
    ],
    "window_attention": _window_attention,
    "merge_patches": _merge_patches,
    "layer_scale": _layer_scale,
    "token_mean": _own("TokenMean", "token_mean"),
    "take_token": _take_token,
}

__all__ = ["SHAPE_RULES", "TOKEN_LOWERING", "L"]
