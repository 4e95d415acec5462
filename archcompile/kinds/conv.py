"""Convolutions: ``conv`` and ``conv_transpose``, each with an optional norm
and activation after it."""

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
    Padding,
    Stride,
    _shown,
    pair,
)
from archcompile.norms import Norm, NormArgs


class _ConvBase(LayerSpec):
    out: Channels
    kernel: Kernel
    stride: Stride = 1
    padding: Padding = 0
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
    #: fields written as a mapping ({batch: {eps: ...}}), $names allowed inside
    mapping_fields: ClassVar[frozenset[str]] = frozenset({"norm"})

    def _check_groups(self) -> None:
        if self.out % self.groups:
            raise PydanticCustomError(
                "groups",
                "groups ({g}) must divide the output channels ({o})",
                {"g": self.groups, "o": self.out},
            )
        norm = self.norm
        if isinstance(norm, NormArgs) and norm.groups and self.out % norm.groups:
            raise PydanticCustomError(
                "groups",
                "the group norm's groups ({g}) must divide the output channels ({o})",
                {"g": norm.groups, "o": self.out},
            )

    @property
    def has_bias(self) -> bool:
        return self.norm is None if self.bias is None else self.bias


class Conv(_ConvBase):
    """2-D convolution, optionally followed by a norm and an activation."""

    kind: Literal["conv"] = "conv"
    padding: ConvPadding = 0

    @model_validator(mode="after")
    def _consistent(self) -> Conv:
        if self.padding == "same" and pair(self.stride) != (1, 1):
            raise PydanticCustomError(
                "same",
                "padding 'same' needs stride 1 (got stride {s})",
                {"s": _shown(self.stride)},
            )
        self._check_groups()
        return self


class ConvTranspose(_ConvBase):
    """2-D transposed convolution, optionally followed by a norm and an activation."""

    kind: Literal["conv_transpose"] = "conv_transpose"
    output_padding: Padding = Field(
        0, description="added to one side of the output; smaller than the stride or the dilation"
    )
    structural_fields: ClassVar[frozenset[str]] = _ConvBase.structural_fields | {"output_padding"}

    @model_validator(mode="after")
    def _consistent(self) -> ConvTranspose:
        for axis, extra, stride, dilation in zip(
            ("height", "width"), pair(self.output_padding), pair(self.stride), pair(self.dilation)
        ):
            if extra >= stride and extra >= dilation:
                raise PydanticCustomError(
                    "output_padding",
                    "output_padding ({p}) must be smaller than the stride ({s}) or the "
                    "dilation ({d}) ({axis})",
                    {"p": extra, "s": stride, "d": dilation, "axis": axis},
                )
        self._check_groups()
        return self
