"""Layer kinds for token models (ViT, MLP-Mixer, ConvNeXt), declared once as
data-only models like those of :mod:`archcompile.layers`, which registers them
(``TOKEN_MODELS``).

Shapes here are sequences ``(L, D)`` (``L`` tokens of width ``D``, without
the batch) next to the images ``(C, H, W)`` and vectors ``(F,)`` of the
older kinds.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from archcompile.layers import Channels, Flag, LayerSpec, _float_field, _int_field, _pair_field

Probability = Annotated[float, _float_field(0.0, 1.0, "p", high_open=True)]


class StochasticDepth(LayerSpec):
    """Drops a residual branch per sample in training (torchvision.ops.StochasticDepth)."""

    kind: Literal["stochastic_depth"] = "stochastic_depth"
    p: Probability
    mode: Literal["row", "batch"] = Field(
        "row", description="drop per sample ('row') or for the whole batch ('batch')"
    )


class PatchEmbed(LayerSpec):
    """Image to tokens: a conv with kernel = stride = patch, then [N, C, H, W] -> [N, H*W, C]."""

    kind: Literal["patch_embed"] = "patch_embed"
    out: Channels
    patch: Annotated[int | tuple[int, int], _pair_field(1, "patch")]
    bias: Flag = Field(True, description="add a bias to the conv")
    structural_fields: ClassVar[frozenset[str]] = frozenset({"patch"})


class ToTokens(LayerSpec):
    """[N, C, H, W] -> [N, H*W, C]: every pixel a token."""

    kind: Literal["to_tokens"] = "to_tokens"


class ToImage(LayerSpec):
    """[N, H*W, C] -> [N, C, H, W]; square unless height and width are given."""

    kind: Literal["to_image"] = "to_image"
    height: Annotated[int, _int_field(1, "height")] | None = Field(
        None, description="the image height; by default the square root of the length"
    )
    width: Annotated[int, _int_field(1, "width")] | None = Field(
        None, description="the image width; by default the square root of the length"
    )
    structural_fields: ClassVar[frozenset[str]] = frozenset({"height", "width"})


class Transpose(LayerSpec):
    """Swaps the axes of a sequence: [N, L, D] -> [N, D, L] (token mixing)."""

    kind: Literal["transpose"] = "transpose"


class LayerNorm(LayerSpec):
    """Layer norm over the last axis, or over the channels of an image (channels_first)."""

    kind: Literal["layernorm"] = "layernorm"
    eps: Annotated[float, _float_field(0.0, 1.0, "eps")] = 1e-5
    channels_first: Flag = Field(
        False, description="normalize the channels of an image [N, C, H, W] (ConvNeXt)"
    )
    structural_fields: ClassVar[frozenset[str]] = frozenset({"channels_first"})
    module_fields: ClassVar[frozenset[str]] = frozenset({"channels_first"})


class Attention(LayerSpec):
    """Multi-head self-attention on tokens, with an output projection."""

    kind: Literal["attention"] = "attention"
    heads: Annotated[int, _int_field(1, "heads")]
    qkv_bias: Flag = Field(True, description="add a bias to the query, key and value projection")
    dropout: Probability = Field(0.0, description="dropout on the attention weights in training")


class WindowAttention(LayerSpec):
    """Swin's (shifted) window attention on tokens of a square grid."""

    kind: Literal["window_attention"] = "window_attention"
    heads: Annotated[int, _int_field(1, "heads")]
    window: Annotated[int, _int_field(1, "window")] = 7
    shift: Annotated[int, _int_field(0, "shift")] = Field(
        0, description="roll the grid by this many tokens first (window // 2 every other block)"
    )

    @model_validator(mode="after")
    def _shift_inside(self) -> WindowAttention:
        if self.shift >= self.window:
            raise PydanticCustomError(
                "shift",
                "shift ({s}) must be smaller than the window ({w})",
                {"s": self.shift, "w": self.window},
            )
        return self


class MergePatches(LayerSpec):
    """Each 2x2 group of a square grid of tokens as one token: [N, L, D] -> [N, L/4, 4D]."""

    kind: Literal["merge_patches"] = "merge_patches"


class ClsToken(LayerSpec):
    """Prepends a learnable class token: [N, L, D] -> [N, L + 1, D]."""

    kind: Literal["cls_token"] = "cls_token"


class PosEmbedding(LayerSpec):
    """Adds a learnable position embedding, one per token of the (fixed) length."""

    kind: Literal["pos_embedding"] = "pos_embedding"


class LayerScale(LayerSpec):
    """Multiplies each channel by a learnable scale (ConvNeXt, CaiT)."""

    kind: Literal["layer_scale"] = "layer_scale"
    init: Annotated[float, _float_field(0.0, 1e6, "init")] = 1e-6


class TokenMean(LayerSpec):
    """Mean over the tokens: [N, L, D] -> [N, D]."""

    kind: Literal["token_mean"] = "token_mean"


class TakeToken(LayerSpec):
    """One token of the sequence (the class token by default): [N, L, D] -> [N, D]."""

    kind: Literal["take_token"] = "take_token"
    index: Annotated[int, _int_field(0, "index")] = 0


TOKEN_MODELS: tuple[type[LayerSpec], ...] = (
    StochasticDepth,
    PatchEmbed,
    ToTokens,
    ToImage,
    Transpose,
    LayerNorm,
    Attention,
    WindowAttention,
    MergePatches,
    ClsToken,
    PosEmbedding,
    LayerScale,
    TokenMean,
    TakeToken,
)
