"""Layers that resize images or rearrange channels: ``upsample``,
``pixel_shuffle``, ``channel_shuffle``, ``channel_split``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from archcompile.fields import Flag, LayerSpec, Pair, _int_field, _pair_field, _shown


class Upsample(LayerSpec):
    """Nearest or bilinear upsampling by an integer factor or to a size."""

    kind: Literal["upsample"] = "upsample"
    scale: Annotated[int | Pair, _pair_field(1, "scale")] | None = Field(
        None, description="scale: an integer factor >= 1, or a [height, width] pair"
    )
    size: Annotated[int | Pair, _pair_field(1, "size")] | None = Field(
        None, description="size: the output height and width"
    )
    mode: Literal["nearest", "bilinear"] = Field("nearest", description="how values are filled")
    align_corners: Flag | None = Field(
        None, description="bilinear only: align the corner pixels of input and output"
    )
    structural_fields: ClassVar[frozenset[str]] = frozenset({"scale", "size"})

    @model_validator(mode="after")
    def _consistent(self) -> Upsample:
        if (self.scale is None) == (self.size is None):
            raise PydanticCustomError(
                "upsample",
                "upsample takes either scale or size"
                + (", not both" if self.scale is not None else ""),
            )
        if self.align_corners is not None and self.mode != "bilinear":
            raise PydanticCustomError(
                "align_corners",
                "align_corners applies to mode 'bilinear' only (mode is '{m}')",
                {"m": self.mode},
            )
        return self


class PixelShuffle(LayerSpec):
    """[N, C*f*f, H, W] -> [N, C, H*f, W*f] (sub-pixel convolution's upsampling)."""

    kind: Literal["pixel_shuffle"] = "pixel_shuffle"
    factor: Annotated[int, _int_field(1, "factor")]
    structural_fields: ClassVar[frozenset[str]] = frozenset({"factor"})
    #: (the channels are divided by its square: one generated class per factor)
    module_fields: ClassVar[frozenset[str]] = frozenset({"factor"})


class ChannelShuffle(LayerSpec):
    """Interleaves the channels of ``groups`` groups (ShuffleNet)."""

    kind: Literal["channel_shuffle"] = "channel_shuffle"
    groups: Annotated[int, _int_field(1, "groups")]


class ChannelSplit(LayerSpec):
    """One of ``parts`` equal parts of the channels: [N, C, H, W] -> [N, C / parts, H, W]."""

    kind: Literal["channel_split"] = "channel_split"
    parts: Annotated[int, _int_field(2, "parts")]
    index: Annotated[int, _int_field(0, "index")]
    #: (the channels are divided by it: one generated class per split)
    module_fields: ClassVar[frozenset[str]] = frozenset({"parts", "index"})

    @model_validator(mode="after")
    def _index_fits(self) -> ChannelSplit:
        if self.index >= self.parts:
            raise PydanticCustomError(
                "index",
                "index {i} is past the last of {p} parts (they are numbered from 0 to {last})",
                {"i": _shown(self.index), "p": self.parts, "last": self.parts - 1},
            )
        return self
