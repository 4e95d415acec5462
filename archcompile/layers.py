"""Every layer kind of the spec language, declared once as a data-only model.

A kind is a pydantic model whose ``kind`` field is its name in YAML. The
models hold the validated arguments and nothing else: shape rules and counts
live in :mod:`archcompile.shapes`, the live builder in
:mod:`archcompile.backends.torch_build` and the source generator in
:mod:`archcompile.backends.codegen`, each a table keyed by kind.
``tests/test_registry.py`` fails when a kind is missing from any table.

The models are declared by family in :mod:`archcompile.kinds` (``conv``,
``pool``, ``pointwise``, ``resample``), on the field types of :mod:`archcompile.fields`;
this module is their registry and re-exports them (``L.Conv``, ``L.pair``).
To add a kind: declare its model there and list it in ``_MODELS``, then add
one entry to each table (see ``docs/architecture.md``).
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from archcompile.fields import (  # noqa: F401 - re-exported
    Activation,
    Channels,
    ConvPadding,
    Dilation,
    Flag,
    Kernel,
    LayerSpec,
    Padding,
    Pair,
    Stride,
    _float_field,
    _int_field,
    _integer,
    _pair_field,
    pair,
)
from archcompile.kinds.conv import Conv, ConvTranspose
from archcompile.kinds.pointwise import (
    GELU,
    LRN,
    BatchNorm,
    Dropout,
    Flatten,
    GroupNorm,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    Linear,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Tanh,
)
from archcompile.kinds.pool import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AvgPool,
    GlobalAvgPool,
    GlobalMaxPool,
    MaxPool,
)
from archcompile.kinds.resample import ChannelShuffle, ChannelSplit, PixelShuffle, Upsample
from archcompile.layers_tokens import TOKEN_MODELS  # (it imports the field types above)

_MODELS: tuple[type[LayerSpec], ...] = (
    Conv,
    ConvTranspose,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    GlobalMaxPool,
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    Upsample,
    PixelShuffle,
    ChannelShuffle,
    ChannelSplit,
    BatchNorm,
    GroupNorm,
    LRN,
    ReLU,
    LeakyReLU,
    GELU,
    SiLU,
    Sigmoid,
    Tanh,
    ReLU6,
    Hardswish,
    Hardsigmoid,
    Dropout,
    Flatten,
    Linear,
    *TOKEN_MODELS,
)

#: the registry: YAML name of each kind -> its model
LAYER_KINDS: dict[str, type[LayerSpec]] = {m.model_fields["kind"].default: m for m in _MODELS}

#: any layer, discriminated by its ``kind`` (for typing IR fields)
Layer = Annotated[Union[_MODELS], Field(discriminator="kind")]  # noqa: UP007

#: structural words of the language that are not layers
COMBINATORS: tuple[str, ...] = ("concat", "add", "mul", "repeat")
