"""Pooling: ``maxpool``, ``avgpool``, and to a fixed size: ``global_avgpool``,
``global_maxpool``, ``adaptive_avgpool``, ``adaptive_maxpool``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from archcompile.fields import (
    Flag,
    Kernel,
    LayerSpec,
    Padding,
    Pair,
    Stride,
    _pair_field,
    _shown,
    pair,
)


class _Pool(LayerSpec):
    kernel: Kernel
    stride: Stride | None = Field(
        None, description="stride; by default the kernel size, as in torch"
    )
    padding: Padding = 0
    ceil_mode: Flag = Field(False, description="round the output size up instead of down")
    structural_fields: ClassVar[frozenset[str]] = frozenset(
        {"kernel", "stride", "padding", "ceil_mode"}
    )

    @model_validator(mode="after")
    def _padding_fits(self) -> _Pool:
        for k, p in zip(pair(self.kernel), pair(self.padding)):
            if 2 * p > k:
                raise PydanticCustomError(
                    "padding",
                    "pool padding {p} is more than half the kernel {k}",
                    {"p": _shown(self.padding), "k": _shown(self.kernel)},
                )
        return self

    @property
    def effective_stride(self) -> int | Pair:
        return self.kernel if self.stride is None else self.stride


class MaxPool(_Pool):
    """2-D max pooling."""

    kind: Literal["maxpool"] = "maxpool"


class AvgPool(_Pool):
    """2-D average pooling."""

    kind: Literal["avgpool"] = "avgpool"
    count_include_pad: Flag = Field(True, description="count the zero padding in the averages")


class GlobalAvgPool(LayerSpec):
    """Average over the whole spatial extent: [N, C, H, W] -> [N, C, 1, 1]."""

    kind: Literal["global_avgpool"] = "global_avgpool"


class AdaptiveAvgPool(LayerSpec):
    """Average pooling to a fixed output size: [N, C, H, W] -> [N, C, h, w]."""

    kind: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    size: Annotated[int | Pair, _pair_field(1, "size")]
    structural_fields: ClassVar[frozenset[str]] = frozenset({"size"})


class GlobalMaxPool(LayerSpec):
    """Maximum over the whole spatial extent: [N, C, H, W] -> [N, C, 1, 1]."""

    kind: Literal["global_maxpool"] = "global_maxpool"


class AdaptiveMaxPool(LayerSpec):
    """Max pooling to a fixed output size: [N, C, H, W] -> [N, C, h, w]."""

    kind: Literal["adaptive_maxpool"] = "adaptive_maxpool"
    size: Annotated[int | Pair, _pair_field(1, "size")]
    structural_fields: ClassVar[frozenset[str]] = frozenset({"size"})
