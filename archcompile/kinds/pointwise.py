"""Layers that keep the layout: norms, activations, dropout; and ``flatten``, ``linear``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from archcompile.fields import (
    Activation,
    Channels,
    Flag,
    LayerSpec,
    _float_field,
    _int_field,
)


class BatchNorm(LayerSpec):
    """Batch normalization over channels (2-D or 1-D input)."""

    kind: Literal["batchnorm"] = "batchnorm"
    eps: Annotated[float, _float_field(0.0, 1.0, "eps")] = 1e-5
    momentum: Annotated[float, _float_field(0.0, 1.0, "momentum")] = 0.1


class LRN(LayerSpec):
    """Local response normalization across channels, as in the GoogLeNet paper."""

    kind: Literal["lrn"] = "lrn"
    size: Channels = 5
    alpha: Annotated[float, _float_field(0.0, 1e6, "alpha")] = 1e-4
    beta: Annotated[float, _float_field(0.0, 1e6, "beta")] = 0.75
    k: Annotated[float, _float_field(0.0, 1e6, "k")] = 1.0


class ReLU(LayerSpec):
    """max(x, 0)."""

    kind: Literal["relu"] = "relu"


class LeakyReLU(LayerSpec):
    """max(x, 0) + negative_slope * min(x, 0)."""

    kind: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: Annotated[float, _float_field(0.0, 1.0, "negative_slope")] = 0.01


class GELU(LayerSpec):
    """Gaussian error linear unit."""

    kind: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = Field(
        "none", description="'tanh': the tanh approximation (GPT-2, MLP-Mixer in JAX)"
    )


class SiLU(LayerSpec):
    """x * sigmoid(x) (swish)."""

    kind: Literal["silu"] = "silu"


class Sigmoid(LayerSpec):
    """The logistic function."""

    kind: Literal["sigmoid"] = "sigmoid"


class Tanh(LayerSpec):
    """Hyperbolic tangent."""

    kind: Literal["tanh"] = "tanh"


class ReLU6(LayerSpec):
    """min(max(x, 0), 6)."""

    kind: Literal["relu6"] = "relu6"


class Hardswish(LayerSpec):
    """x * relu6(x + 3) / 6 (MobileNet v3)."""

    kind: Literal["hardswish"] = "hardswish"


class Hardsigmoid(LayerSpec):
    """relu6(x + 3) / 6 (MobileNet v3's gates)."""

    kind: Literal["hardsigmoid"] = "hardsigmoid"


class GroupNorm(LayerSpec):
    """Group normalization: channels in ``groups`` groups, each normalized."""

    kind: Literal["groupnorm"] = "groupnorm"
    groups: Annotated[int, _int_field(1, "groups")]
    eps: Annotated[float, _float_field(0.0, 1.0, "eps")] = 1e-5
    affine: Flag = Field(True, description="a learnable scale and shift per channel")


class Dropout(LayerSpec):
    """Zeroes elements with probability p during training."""

    kind: Literal["dropout"] = "dropout"
    p: Annotated[float, _float_field(0.0, 1.0, "p", high_open=True)] = 0.5


class Flatten(LayerSpec):
    """[N, C, H, W] -> [N, C*H*W]."""

    kind: Literal["flatten"] = "flatten"


class Linear(LayerSpec):
    """Fully connected layer on [N, features] or on the last axis of tokens [N, L, D]."""

    kind: Literal["linear"] = "linear"
    out: Channels
    bias: Flag = Field(True, description="add a bias")
    activation: Activation | None = Field(None, description="an activation applied to the output")
    structural_fields: ClassVar[frozenset[str]] = frozenset({"activation"})
    module_fields: ClassVar[frozenset[str]] = frozenset({"activation"})
