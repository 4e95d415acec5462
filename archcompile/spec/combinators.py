"""Combinators while a spec is expanded: branches joined by ``concat``,
``add`` or ``mul`` (each branch possibly under an ``if:``), and ``repeat``
unrolled.

:class:`Combinators` is that part of :class:`~archcompile.spec.expand.Expander`.
"""

from __future__ import annotations

from typing import Any

from archcompile.errors import LimitError, clipped_repr
from archcompile.ir import (
    BranchNode,
    Condition,
    Node,
)
from archcompile.spec.names import (
    attribute_problem,
)
from archcompile.spec.scope import (
    Abort,
    Scope,
)
from archcompile.spec.source import SourceMap, SpecPath
from archcompile.spec.wiring import Body
from archcompile.symbolic import Expr, names

#: the combinators that join branches or named values, and how
JOINS = {
    "concat": "joined on channels",
    "add": "summed; [] is the identity",
    "mul": "multiplied, sizes of 1 broadcasting; [] is the identity",
}


class Combinators:
    """``concat``/``add``/``mul`` branches and ``repeat``, for the expander."""

    def branches(
        self,
        kind: str,
        raw: Any,
        path: SpecPath,
        argpath: SpecPath,
        smap: SourceMap,
        scope: Scope,
    ) -> BranchNode:
        what = JOINS[kind]
        if not isinstance(raw, dict) or len(raw) < 2:
            self.error(
                smap,
                argpath,
                f"{kind} takes a mapping of two or more named branches ({what})",
                f"'- {kind}: {{main: [...], shortcut: []}}'",
            )
            raise Abort
        branches: dict[str, list[Node]] = {}
        singles: set[str] = set()
        conditions: dict[str, Condition] = {}
        for name, items in raw.items():
            problem = attribute_problem(name, "branch")
            if problem:
                self.error(smap, argpath + (name,), problem, key=True)
                continue
            if isinstance(items, dict) and set(items) == {"if", "layers"}:
                when = self.condition(items["if"], argpath + (name, "if"), smap, scope)
                if when is None or when is False:
                    continue  # left out (or wrong, and reported)
                if when is not True:
                    conditions[name] = when
                argpath_items = argpath + (name, "layers")
                items = items["layers"]
                if not isinstance(items, list):
                    self.error(smap, argpath_items, "layers: of a branch takes a list of layers")
                    continue
                branches[name] = self.expand_list(items, argpath_items, smap, scope)
                continue
            single = items is not None and not isinstance(items, list)
            if single:
                singles.add(name)
                if isinstance(items, dict) and "name" in items:
                    self.error(
                        smap,
                        argpath + (name, "name"),
                        "a branch written as one item is named by its key",
                    )
            branches[name] = self.expand_list(
                [] if items is None else [items] if single else items,
                argpath + (name,),
                smap,
                scope,
                single=single,
            )
            if single and len(branches[name]) > 1:
                self.error(
                    smap,
                    argpath + (name,),
                    f"branch {name!r} is written as one item but expands to {len(branches[name])}",
                    "write the branch as a list: '- ...'",
                )
        if not branches and not self.diagnostics:
            self.error(smap, argpath, f"every branch of this {kind} is left out by its if:")
            raise Abort
        return BranchNode(
            node=kind,  # type: ignore[arg-type]
            branches=branches,
            singles=frozenset(singles),
            conditions=conditions,
            origin=self.origin(smap, path),
        )

    def repeat(self, raw: Any, argpath: SpecPath, smap: SourceMap, scope: Scope) -> list[Node]:
        if not isinstance(raw, dict) or set(raw) != {"times", "layers"}:
            self.error(
                smap,
                argpath,
                "repeat takes exactly {times: N, layers: [...]}",
                "'- repeat: {times: 2, layers: [{conv: {out: 64, kernel: 3}}]}'",
            )
            raise Abort
        times = self.resolve(raw["times"], argpath + ("times",), smap, scope)
        if times is None:
            raise Abort
        count = times.value
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            self.error(
                times.where.smap,
                times.where.path,
                f"repeat times must be a positive integer, got {clipped_repr(count)}",
            )
            raise Abort
        if count > self.limits.max_layers:
            raise LimitError(
                times.where.smap.diagnostic(
                    times.where.path,
                    f"repeat {count:,} times exceeds the limit of {self.limits.max_layers:,} layers",
                )
            )
        self.structural |= times.spec_params
        if isinstance(times.symbol, Expr) and scope.stack:
            self.baked[scope.stack[-1]].update(names(times.symbol))
        if raw["layers"] == []:
            return []  # nothing to repeat (and nothing to count: do not loop)
        nodes: list[Node] = []
        for _ in range(count):
            before = self.errors
            nodes += self.expand_list(
                raw["layers"], argpath + ("layers",), smap, scope, Body("repeat")
            )
            if self.errors > before:  # the same problems again in every copy
                break
        return nodes
