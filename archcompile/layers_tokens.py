"""Layer kinds for token models (ViT, MLP-Mixer, ConvNeXt, Swin), declared
once as data-only models like those of :mod:`archcompile.layers`, which
registers them (``TOKEN_MODELS``).

Shapes here are sequences ``(L, D)`` (tokens, without the batch) next to the
images ``(C, H, W)`` and vectors ``(F,)`` of the older kinds.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from archcompile.layers import LayerSpec, _float_field

Probability = Annotated[float, _float_field(0.0, 1.0, "p", high_open=True)]


class StochasticDepth(LayerSpec):
    """Drops a residual branch per sample in training (torchvision.ops.StochasticDepth)."""

    kind: Literal["stochastic_depth"] = "stochastic_depth"
    p: Probability
    mode: Literal["row", "batch"] = Field(
        "row", description="drop per sample ('row') or for the whole batch ('batch')"
    )
    module_fields: ClassVar[frozenset[str]] = frozenset()


TOKEN_MODELS: tuple[type[LayerSpec], ...] = (StochasticDepth,)
