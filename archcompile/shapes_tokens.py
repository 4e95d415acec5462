"""Shape and count rules of the token kinds (:mod:`archcompile.layers_tokens`),
merged into ``SHAPE_RULES`` and ``COUNT_RULES`` by :mod:`archcompile.shapes`.

Sequences are ``(L, D)``: ``L`` tokens of width ``D``, without the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Shape = tuple[Any, ...]


def _same(layer: Any, shape: Shape) -> Shape:
    return shape


def _free(layer: Any, inp: Shape, out: Shape) -> tuple[int, int]:
    return 0, 0


TOKEN_SHAPE_RULES: dict[str, Callable[[Any, Shape], Shape]] = {
    "stochastic_depth": _same,
}

TOKEN_COUNT_RULES: dict[str, Callable[[Any, Shape, Shape], tuple[int, int]]] = {
    "stochastic_depth": _free,
}
