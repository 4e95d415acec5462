"""Arguments written as a mapping, and the defaults that reach a conv's norm.

``norm: {batch: {eps: $eps}}`` is one argument whose value is a mapping:
:func:`resolve_mapping` resolves the ``$names`` inside it. Such a field
decides which modules a layer becomes, so its value is kept as a value (never
as an expression in generated source).

:func:`norm_defaults` fills what a ``norm:`` leaves out, in this order: the
``norm`` of the kind's ``defaults`` when it names the same norm, then the
defaults of the stand-alone kind (``batchnorm``, ``groupnorm``), then torch's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError

from archcompile.layers import LAYER_KINDS
from archcompile.norms import NORMS, check_norm, with_defaults
from archcompile.spec.scope import Scope, Value, Where
from archcompile.spec.source import SourceMap, SpecPath
from archcompile.symbolic import names

if TYPE_CHECKING:
    from archcompile.spec.expand import Expander


def resolve_mapping(
    expander: Expander, raw: dict, path: SpecPath, smap: SourceMap, scope: Scope
) -> Value | None:
    """``raw`` with every ``$name`` inside resolved; its symbol keeps the
    Exprs (for the names a definition must fix), its value is plain."""
    value: dict[str, Any] = {}
    symbol: dict[str, Any] = {}
    params: set[str] = set()
    failed = False
    for key, item in raw.items():
        if isinstance(item, dict):
            inner = resolve_mapping(expander, item, path + (key,), smap, scope)
        else:
            inner = expander.resolve(item, path + (key,), smap, scope)
        if inner is None:
            failed = True
            continue
        value[key], symbol[key] = inner.value, inner.symbol
        params |= inner.spec_params
    if failed:
        return None
    return Value(value, symbol, Where(smap, path), frozenset(params))


def symbol_names(symbol: Any) -> set[str]:
    """The parameter names an argument was written with (also inside mappings)."""
    if isinstance(symbol, dict):
        return {n for v in symbol.values() for n in symbol_names(v)}
    return names(symbol)


def norm_defaults(kind: str, values: dict[str, Value], defaults: dict[str, dict[str, Value]]):
    """Fill the missing arguments of the ``norm`` in ``values`` (a layer's
    arguments, before validation) from ``defaults``; the spec params those
    defaults were written with (they decide modules: baked in source)."""
    given = values.get("norm")
    if given is None or given.value is None or "norm" not in LAYER_KINDS[kind].mapping_fields:
        return frozenset()
    try:
        norm = check_norm(given.value)
    except PydanticCustomError:
        return frozenset()  # reported when the layer is validated
    sources: list[dict[str, Any]] = []
    params: set[str] = set()
    written = defaults.get(kind, {}).get("norm")
    if written is not None and written.value is not None:  # (norm: null: no norm)
        default = check_norm(written.value)  # validated when defaults were read
        if default.kind == norm.kind:
            sources.append(default.model_dump())
            params |= written.spec_params
    stand_alone = defaults.get(NORMS[norm.kind][0], {})
    sources.append({name: v.value for name, v in stand_alone.items()})
    filled = with_defaults(norm, *sources)
    if filled == norm:
        params = set()
    # the value replaces what was written (never an expression in source); the
    # symbol keeps the names it was written with, for a definition to bake them
    symbol = given.symbol if isinstance(given.symbol, dict) else {"norm": given.symbol}
    values["norm"] = replace(given, value=filled, symbol=symbol)
    if filled != norm:
        params |= {p for v in stand_alone.values() for p in v.spec_params}
    return frozenset(params)
