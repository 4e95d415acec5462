"""Values while a spec is expanded: ``$names``, expressions and conditions.

:class:`Resolution` is the part of :class:`~archcompile.spec.expand.Expander`
that turns what a spec writes into a :class:`~archcompile.spec.scope.Value`:
a ``$name`` of the scope, an expression (:mod:`archcompile.spec.expressions`)
computed with the values in scope and written with their symbols, or an
``if:`` decided now or left to the tree (it needs the input's size).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from archcompile.errors import clipped_repr
from archcompile.ir import (
    Condition,
)
from archcompile.spec.expressions import (
    DEFERRED,
    ExprError,
    Ref,
    evaluate,
    looks_like,
    parse,
    references,
    truth,
)
from archcompile.spec.mappings import resolve_mapping
from archcompile.spec.names import (
    did_you_mean,
)
from archcompile.spec.scope import (
    Scope,
    Value,
    Where,
)
from archcompile.spec.source import SourceMap, SpecPath
from archcompile.symbolic import Expr

#: the ``$in_...`` names: the size of the input a block receives
INPUT_NAMES = ("in_channels", "in_height", "in_width")


class Resolution:
    """Names, expressions and conditions, for the expander."""

    def condition(
        self, raw: Any, path: SpecPath, smap: SourceMap, scope: Scope
    ) -> bool | Condition | None:
        """An ``if:`` value: true or false when the values in scope decide it, a
        :class:`Condition` when it needs the input's size (``$in_channels``);
        None (and a diagnostic) when it is wrong."""
        if isinstance(raw, bool):
            return raw
        if not isinstance(raw, str):
            self.error(
                smap,
                path,
                f"if: takes a condition, got {clipped_repr(raw)}",
                "for example: 'if: $stride == 1'",
            )
            return None
        try:
            tree = parse(raw)
            value = evaluate(tree, lambda ref: self.reference(ref, scope).value)
            for ref in references(tree):
                self.structural |= self.reference(ref, scope).spec_params
            if value is DEFERRED:
                mark = smap.inside(path, 0)
                origin = self.origin(smap, path)
                if mark is not None:
                    origin = origin.model_copy(update={"column": mark.column})
                return Condition(expr=tree, text=raw, origin=origin)
            return truth(value, tree)
        except ExprError as problem:
            self.expression_error(smap, path, problem)
            return None

    def resolve(
        self, raw: Any, path: SpecPath, smap: SourceMap, scope: Scope, mapping: bool = False
    ) -> Value | None:
        """Substitute ``$names`` and compute expressions in ``raw``; None (and a
        diagnostic) on a problem. ``mapping``: the field may be written as a
        mapping (``norm: {batch: {eps: $eps}}``)."""
        if isinstance(raw, str) and looks_like(raw):
            return self.expression(raw, path, smap, scope)
        if isinstance(raw, list):
            items = [self.resolve(v, path + (i,), smap, scope) for i, v in enumerate(raw)]
            if any(v is None for v in items):
                return None
            return Value(
                [v.value for v in items],  # type: ignore[union-attr]
                [v.symbol for v in items],  # type: ignore[union-attr]
                Where(smap, path),
                frozenset().union(*(v.spec_params for v in items)),  # type: ignore[union-attr]
                items=tuple(items),  # type: ignore[arg-type]
            )
        if isinstance(raw, dict) and mapping:
            return resolve_mapping(self, raw, path, smap, scope)
        if isinstance(raw, dict):
            self.error(smap, path, f"expected a value, got a mapping {clipped_repr(raw)}")
            return None
        return Value(raw, raw, Where(smap, path))

    def expression(self, text: str, path: SpecPath, smap: SourceMap, scope: Scope) -> Value | None:
        """The value of an expression (:mod:`archcompile.spec.expressions`):
        computed with the values in scope, and written with their symbols."""
        try:
            tree = parse(text)
            if isinstance(tree, Ref):  # one name: its value as it is (any type)
                found = self.reference(tree, scope)
                if found.value is DEFERRED:
                    found = replace(found, where=Where(smap, path))
                return found
            # every name is looked up, even one that evaluation skips ('true or $x')
            used = [self.reference(ref, scope) for ref in references(tree)]
            value = evaluate(tree, lambda ref: self.reference(ref, scope).value)
        except ExprError as problem:
            self.expression_error(smap, path, problem)
            return None
        try:
            symbol = evaluate(tree, lambda ref: self.reference(ref, scope).symbol)
        except ExprError:
            symbol = value  # not expressible with symbols: the value itself
        spec_params = frozenset().union(*(v.spec_params for v in used))
        return Value(value, symbol, Where(smap, path), spec_params)

    def reference(self, ref: Ref, scope: Scope) -> Value:
        """The value of ``$name`` in ``scope``; raises :class:`ExprError`."""
        if ref.name in scope.names:
            return scope.names[ref.name]
        if ref.name in INPUT_NAMES:
            return Value(DEFERRED, Expr.name(ref.name), Where(self.smap, ()))
        available = sorted(scope.names)
        hint = did_you_mean(ref.name, [*available, *INPUT_NAMES]) or (
            "names in scope here: " + ", ".join("$" + n for n in available)
            if available
            else "no names are in scope here"
        )
        raise ExprError(f"undefined name ${ref.name}", ref.at, hint)

    def expression_error(self, smap: SourceMap, path: SpecPath, problem: ExprError) -> None:
        mark = smap.inside(path, problem.offset)
        diagnostic = smap.diagnostic(path, str(problem), hint=problem.hint)
        if mark is not None:
            diagnostic = replace(diagnostic, line=mark.line, column=mark.column)
        self.report(diagnostic)

    # -- layers --------------------------------------------------------------
