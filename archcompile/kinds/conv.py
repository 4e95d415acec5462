"""Convolutions: ``conv``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from archcompile.fields import (
    Activation,
    Channels,
    ConvPadding,
    Dilation,
    Flag,
    Kernel,
    LayerSpec,
    Norm,
    Stride,
    _shown,
    pair,
)


class Conv(LayerSpec):
    """2-D convolution, optionally followed by a norm and an activation."""

    kind: Literal["conv"] = "conv"
    out: Channels
    kernel: Kernel
    stride: Stride = 1
    padding: ConvPadding = 0
    dilation: Dilation = 1
    groups: Channels = 1
    bias: Flag | None = Field(
        None, description="add a bias; by default, a bias unless a norm follows"
    )
    activation: Activation | None = Field(None, description="an activation applied after the norm")
    norm: Norm | None = Field(None, description="a norm applied after the convolution")
    structural_fields: ClassVar[frozenset[str]] = frozenset(
        {"kernel", "stride", "padding", "dilation", "activation", "norm"}
    )
    module_fields: ClassVar[frozenset[str]] = frozenset({"activation", "norm"})

    @model_validator(mode="after")
    def _consistent(self) -> Conv:
        if self.padding == "same" and pair(self.stride) != (1, 1):
            raise PydanticCustomError(
                "same",
                "padding 'same' needs stride 1 (got stride {s})",
                {"s": _shown(self.stride)},
            )
        if self.out % self.groups:
            raise PydanticCustomError(
                "groups",
                "groups ({g}) must divide the output channels ({o})",
                {"g": self.groups, "o": self.out},
            )
        return self

    @property
    def has_bias(self) -> bool:
        return self.norm is None if self.bias is None else self.bias
