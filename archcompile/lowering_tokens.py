"""What the token kinds (:mod:`archcompile.layers_tokens`) become, merged into
``LOWERING`` by :mod:`archcompile.lowering`.

Most become archc's own module classes (``archc:<Class>``, written once in
:mod:`archcompile.modules`), which both backends use from the same source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archcompile import layers_tokens as T
from archcompile.lowering import ModuleCall, _kw

Shape = tuple[Any, ...]


def _stochastic_depth(layer: T.StochasticDepth, shape: Shape) -> list[ModuleCall]:
    kwargs = _kw({"mode": "row"}, mode=layer.mode)
    return [ModuleCall("archc:StochasticDepth", (layer.p,), kwargs, role="stochastic_depth")]


TOKEN_LOWERING: dict[str, Callable[[Any, Shape], list[ModuleCall]]] = {
    "stochastic_depth": _stochastic_depth,
}
