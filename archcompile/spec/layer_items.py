"""Layers while a spec is expanded: defaults merged, arguments validated.

:class:`Layers` is the part of :class:`~archcompile.spec.expand.Expander`
that makes one :class:`~archcompile.ir.LayerNode`: the spec's ``defaults``
under the written arguments, each value resolved, the whole validated by the
kind's model (errors located where each value was written), and fields that
need the input's size (``$in_channels``) left for the tree to validate.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from archcompile.errors import clipped_repr
from archcompile.ir import (
    LayerNode,
)
from archcompile.layers import LAYER_KINDS
from archcompile.spec.diagnose import validation_diagnostics
from archcompile.spec.expressions import (
    DEFERRED,
    ROUNDING_HINT,
)
from archcompile.spec.kindhint import kind_hint
from archcompile.spec.mappings import norm_defaults, symbol_names
from archcompile.spec.names import (
    did_you_mean,
)
from archcompile.spec.scope import (
    Abort,
    Scope,
    Value,
    tupled,
)
from archcompile.spec.source import SourceMap, SpecPath, format_path
from archcompile.symbolic import Expr, has_expr


class Layers:
    """Layer items and the spec's ``defaults``, for the expander."""

    def _defaults(self, scope: Scope) -> dict[str, dict[str, Value]]:
        result: dict[str, dict[str, Value]] = {}
        for kind, args in self.spec.defaults.items():
            path: SpecPath = ("defaults", kind)
            if kind not in LAYER_KINDS:
                hint = kind_hint(kind, LAYER_KINDS)
                if hint.startswith("see docs"):
                    hint = "defaults are keyed by layer kind, such as conv"
                self.error(
                    self.smap,
                    path,
                    f"unknown layer kind {kind!r} in defaults",
                    hint,
                    key=True,
                )
                continue
            fields = [f for f in LAYER_KINDS[kind].model_fields if f != "kind"]
            result[kind] = {}
            for name, raw in (args or {}).items():
                if name not in fields:
                    self.error(
                        self.smap,
                        path + (name,),
                        f"{kind} has no argument {name!r}",
                        did_you_mean(name, fields),
                        key=True,
                    )
                    continue
                mapping = name in LAYER_KINDS[kind].mapping_fields
                value = self.resolve(raw, path + (name,), self.smap, scope, mapping)
                if value is not None and self._default_fits(kind, name, value):
                    result[kind][name] = value
        return result

    def _default_fits(self, kind: str, name: str, value: Value) -> bool:
        """Check a default on its own, so that a wrong one is reported even when
        no layer of that kind uses it (whole layers are validated later)."""
        adapter = _field_adapter(kind, name)
        try:
            adapter.validate_python(value.value)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.error(value.where.smap, value.where.path, error["msg"])
            return False
        return True

    # -- lists and items ---------------------------------------------------
    def layer(
        self,
        kind: str,
        args: Any,
        path: SpecPath,
        argpath: SpecPath,
        smap: SourceMap,
        scope: Scope,
    ) -> LayerNode:
        model = LAYER_KINDS[kind]
        fields = [f for f in model.model_fields if f != "kind"]
        if args is None:
            args = {}
        if not isinstance(args, dict):
            example = ", ".join(f"{f}: ..." for f in fields[:2])
            self.error(
                smap,
                argpath,
                f"arguments of {kind!r} must be a mapping, got {clipped_repr(args)}",
                f"write '- {kind}: {{{example}}}'",
            )
            raise Abort
        values = {}
        for name, value in self.defaults.get(kind, {}).items():
            if scope.stack and has_expr(value.symbol):
                # a generated class cannot see the spec's params: it gets the
                # value, so the model must not offer the param as an argument
                self.structural |= value.spec_params
                value = replace(value, symbol=value.value)
            values[name] = value
        failed = False
        for name, raw in args.items():
            if name not in fields:
                hint = did_you_mean(name, fields) or (
                    f"{kind} takes: " + ", ".join(fields)
                    if fields
                    else f"{kind} takes no arguments"
                )
                self.error(
                    smap,
                    argpath + (name,),
                    f"{kind} has no argument {name!r}",
                    hint,
                    key=True,
                )
                failed = True
                continue
            value = self.resolve(raw, argpath + (name,), smap, scope, name in model.mapping_fields)
            if value is None:
                failed = True
            else:
                values[name] = value
        if failed:
            raise Abort
        self.structural |= norm_defaults(kind, values, self.defaults)
        deferred = [name for name, value in values.items() if _deferred(value.value)]
        if deferred:
            # known with the input's shape: the tree validates the whole layer
            # then; the other fields are checked one by one now
            known = {n: v for n, v in values.items() if n not in deferred}
            fits = [self._default_fits(kind, n, v) for n, v in known.items()]  # report all
            if not all(fits):
                raise Abort
            op = model.model_construct(**{n: tupled(v.value) for n, v in known.items()})
        else:
            op = self._validated(model, kind, values, argpath, smap)
        for name in model.structural_fields & values.keys():
            self.structural |= values[name].spec_params
        for name in model.module_fields & values.keys():
            value = values[name]
            if scope.stack and isinstance(value.symbol, (Expr, dict)):
                # which modules the layer becomes: one generated class per value
                self.baked[scope.stack[-1]].update(symbol_names(value.symbol))
                values[name] = replace(value, symbol=value.value)
        # validated with the values; kept as written (``$name`` -> Expr)
        written = {name: tupled(v.symbol) for name, v in values.items() if has_expr(v.symbol)}
        # (constructed without validation: the Exprs are not values; they were)
        return LayerNode.model_construct(
            op=op.model_copy(update=written),
            origin=self.origin(smap, path),
            deferred=tuple(
                (n, self.origin(values[n].where.smap, values[n].where.path)) for n in deferred
            ),
        )

    def _validated(self, model, kind: str, values: dict[str, Value], argpath, smap) -> Any:
        """The layer's model, validated with the values; diagnostics point at
        where each value was written (a call site, for a block's parameter)."""
        try:
            return model.model_validate({name: value.value for name, value in values.items()})
        except ValidationError as exc:
            where = {name: (v.where.smap, v.where.path) for name, v in values.items()}
            for diagnostic in validation_diagnostics(exc, smap, argpath, where=where):
                field_name = next(
                    (
                        n
                        for n, v in values.items()
                        if v.where.path and format_path(v.where.path) == diagnostic.path
                    ),
                    None,
                )
                notes: tuple[str, ...] = ()
                bound = values.get(field_name) if field_name else None
                if bound is not None and bound.name:
                    mark = smap.value(argpath)
                    at = f" ({mark.file}:{mark.line})" if mark and mark.line else ""
                    notes = (
                        f"${bound.name} is used as {field_name!r} of {kind} at {format_path(argpath)}{at}",
                    )
                hint = diagnostic.hint
                if (
                    bound is not None
                    and isinstance(bound.value, float)
                    and "integer" in str(diagnostic.message)
                ):
                    hint = ROUNDING_HINT
                self.report(replace(diagnostic, notes=notes, hint=hint))
            raise Abort from None


def _deferred(value: Any) -> bool:
    if isinstance(value, list):
        return any(_deferred(v) for v in value)
    return value is DEFERRED


@functools.cache
def _field_adapter(kind: str, name: str) -> TypeAdapter:
    field_info = LAYER_KINDS[kind].model_fields[name]
    if not field_info.metadata:
        return TypeAdapter(field_info.annotation)
    return TypeAdapter(Annotated[field_info.annotation, *field_info.metadata])
