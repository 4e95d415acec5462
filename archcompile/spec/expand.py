"""Expand a validated spec document into the IR :class:`~archcompile.ir.Graph`.

This is where layer lists are checked: every item is a known layer kind, a
combinator (``concat``, ``add``, ``repeat``) or a defined composite block;
``$names`` resolve in the scope of the enclosing definition (or the spec's
``params`` at top level); the spec's ``defaults`` are merged under explicit
arguments; ``repeat`` is unrolled; and every layer is validated by its model.
Problems are collected so that one run reports all of them.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from archcompile.errors import Diagnostic, LimitError, SpecError, clipped_repr
from archcompile.ir import (
    INPUT,
    Block,
    BranchNode,
    Condition,
    Definition,
    Graph,
    JoinNode,
    LayerNode,
    Node,
    Origin,
)
from archcompile.layers import COMBINATORS, LAYER_KINDS
from archcompile.limits import Limits
from archcompile.spec.composite import CompositeBlocks
from archcompile.spec.diagnose import validation_diagnostics
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
from archcompile.spec.kindhint import kind_hint
from archcompile.spec.mappings import norm_defaults, resolve_mapping, symbol_names
from archcompile.spec.names import (
    attribute_problem,
    did_you_mean,
)
from archcompile.spec.schema import SpecDocument
from archcompile.spec.scope import (
    Abort,
    DefinitionSource,
    Scope,
    Value,
    Where,
    tupled,
)
from archcompile.spec.source import SourceMap, SpecPath, format_path
from archcompile.spec.wiring import Body, check_reached, split_item, wiring
from archcompile.spec.wiring import outputs as wired_outputs
from archcompile.symbolic import Expr, has_expr, names

#: the ``$in_...`` names: the size of the input a block receives
INPUT_NAMES = ("in_channels", "in_height", "in_width")


#: the combinators that join branches or named values, and how
JOINS = {
    "concat": "joined on channels",
    "add": "summed; [] is the identity",
    "mul": "multiplied, sizes of 1 broadcasting; [] is the identity",
}


@dataclass
class Expander(CompositeBlocks):
    spec: SpecDocument
    smap: SourceMap
    definitions: dict[str, DefinitionSource]
    limits: Limits
    diagnostics: list[Diagnostic] = field(default_factory=list)
    reported: set[Diagnostic] = field(default_factory=set)  # for O(1) de-duplication
    errors: int = 0  # problems found, counting repeats of the same one
    #: items of layer lists expanded so far (layers, add/concat, block uses):
    #: bounds the work of ``repeat`` and of composite blocks used inside each other
    item_count: int = 0
    structural: set[str] = field(default_factory=set)
    used: dict[str, DefinitionSource] = field(default_factory=dict)
    #: parameters of each definition that decide its structure (repeat counts,
    #: activations, norms): generated source has one class per value
    baked: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    # -- reporting --------------------------------------------------------
    def error(
        self,
        smap: SourceMap,
        path: SpecPath,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.report(replace(smap.diagnostic(path, message, hint=hint, key=key), notes=notes))

    def report(self, diagnostic: Diagnostic) -> None:
        self.errors += 1
        if diagnostic not in self.reported:
            self.reported.add(diagnostic)
            self.diagnostics.append(diagnostic)

    def origin(self, smap: SourceMap, path: SpecPath) -> Origin:
        mark = smap.value(path)
        if mark is None:
            return Origin(path=format_path(path))
        return Origin(file=mark.file, line=mark.line, column=mark.column, path=format_path(path))

    # -- entry point -------------------------------------------------------
    def run(self) -> Graph:
        scope = Scope(
            {
                name: Value(
                    value,
                    Expr.name(name),
                    Where(self.smap, ("params", name)),
                    frozenset({name}),
                    name,
                )
                for name, value in self.spec.params.items()
            }
        )
        self.defaults = self._defaults(scope)
        blocks = []
        for name, items in self.spec.blocks.items():
            path: SpecPath = ("blocks", name)
            if items == [] or items is None:
                self.error(self.smap, path, f"block {name!r} has no layers")
                continue
            body = Body("block", [INPUT, *(b.name for b in blocks)])
            errors_before = self.errors
            single = not isinstance(items, list)
            nodes = self.expand_list(
                [items] if single else items, path, self.smap, scope, body, single=single
            )
            if not nodes:
                if self.errors == errors_before:
                    self.error(
                        self.smap, path, f"block {name!r} expands to no layers", "give it a layer"
                    )
                continue
            if single and isinstance(items, dict) and "name" in items:
                self.error(
                    self.smap,
                    path + ("name",),
                    "a block written as one item is named by its key",
                    "remove 'name:' (the block's key is its attribute name)",
                )
            if single and len(nodes) > 1:
                self.error(
                    self.smap,
                    path,
                    f"block {name!r} is written as one item but expands to {len(nodes)}",
                    "write the block as a list: '- ...'",
                )
            blocks.append(
                Block(name=name, body=nodes, single=single, origin=self.origin(self.smap, path))
            )
        names = [b.name for b in blocks]
        outputs = wired_outputs(self, self.spec.outputs, names, list(self.spec.blocks), self.smap)
        if outputs and not self.diagnostics:
            check_reached(self, blocks, outputs, self.smap)
        self._check_class_names()
        if self.diagnostics:
            raise SpecError(self.diagnostics)
        return Graph(
            name=self.spec.name,
            description=self.spec.description,
            input=self.spec.input,
            params=dict(self.spec.params),
            blocks=blocks,
            outputs=outputs,
            definitions={
                name: Definition(
                    name=name,
                    params=source.doc.params,
                    doc=source.doc.doc,
                    origin=self.origin(source.smap, source.path),
                    baked=frozenset(self.baked.get(name, ())),
                )
                for name, source in self.used.items()
            },
            structural_params=frozenset(self.structural),
        )

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
    def expand_list(
        self,
        items: Any,
        path: SpecPath,
        smap: SourceMap,
        scope: Scope,
        body: Body | None = None,
        single: bool = False,
    ) -> list[Node]:
        """The nodes of a layer list (``single``: of one item written without a list)."""
        if not isinstance(items, list):
            self.error(smap, path, f"expected a list of layers, got {clipped_repr(items)}")
            return []
        body = body or Body()
        nodes: list[Node] = []
        for index, item in enumerate(items):
            at = path if single else path + (index,)
            try:
                nodes.extend(self.item(item, at, smap, scope, index, body))
            except Abort:
                pass
        return nodes

    def item(
        self,
        item: Any,
        path: SpecPath,
        smap: SourceMap,
        scope: Scope,
        index: int = 0,
        body: Body | None = None,
    ) -> list[Node]:
        self.item_count += 1
        if self.item_count > self.limits.max_layers:
            raise LimitError(
                smap.diagnostic(
                    path,
                    f"the network expands to more than {self.limits.max_layers:,} layers",
                    hint="check repeat counts and composite blocks used inside each other",
                )
            )
        extra: dict = {}
        if isinstance(item, dict) and "if" in item:
            return self.conditional_item(item, path, smap, scope, index, body)
        if isinstance(item, str):
            kind, args, argpath = item, None, path
        elif isinstance(item, dict) and item:
            kind, extra = split_item(self, item, path, smap)
            args = item[kind]
            argpath = path + (kind,)
        else:
            self.error(
                smap,
                path,
                "a layer cannot be an empty mapping"
                if isinstance(item, dict)
                else f"expected a layer (a kind, or {{kind: arguments}}), got {clipped_repr(item)}",
                "arguments go inside the kind's mapping: '- conv: {out: 64, kernel: 3}'",
            )
            raise Abort
        if not extra:
            return self.kind_item(
                kind, args, path, argpath, smap, scope, key=isinstance(item, dict)
            )
        return [
            self.wired_item(kind, args, extra, path, argpath, smap, scope, index, body or Body())
        ]

    def conditional_item(self, item: dict, path, smap, scope, index, body) -> list[Node]:
        """An item with ``if:``: left out when the condition is false, kept when
        it is true; decided by the tree when it depends on the input's size."""
        when = self.condition(item["if"], path + ("if",), smap, scope)
        rest = {k: v for k, v in item.items() if k != "if"}
        if when is False or when is None:
            # (a wrong condition is reported once, its layer is not expanded)
            return []
        nodes = self.item(rest, path, smap, scope, index, body)
        if when is True:
            return nodes
        return [node.model_copy(update={"when": when}) for node in nodes]

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

    def wired_item(
        self,
        kind: str,
        args: Any,
        extra: dict,
        path: SpecPath,
        argpath: SpecPath,
        smap: SourceMap,
        scope: Scope,
        index: int,
        body: Body,
    ) -> Node:
        """An item with ``name:`` or ``from:``: a join, or one node with its wiring."""
        if kind == "repeat":
            self.error(smap, path, "repeat takes no name: or from:; put them on its layers")
            raise Abort
        if body.where == "repeat" and "name" in extra:
            self.error(
                smap,
                path + ("name",),
                "a layer inside repeat cannot be named: every copy would take the name",
            )
            raise Abort
        if kind in JOINS and args is None and "from" in extra:
            name, reads = wiring(self, extra, kind, index, path, smap, body, join=True)
            if len(reads) < 2:
                article = "an" if kind == "add" else "a"
                self.error(
                    smap, path + ("from",), f"{article} {kind} of values needs two or more names"
                )
                raise Abort
            return JoinNode(mode=kind, name=name, reads=reads, origin=self.origin(smap, path))
        # the name is taken first: a mistake in the layer is not reported again
        # by every later from: that reads it
        name, reads = wiring(self, extra, kind, index, path, smap, body)
        nodes = self.kind_item(kind, args, path, argpath, smap, scope, key=True)
        return nodes[0].model_copy(update={"name": name, "reads": reads})

    def kind_item(
        self,
        kind: str,
        args: Any,
        path: SpecPath,
        argpath: SpecPath,
        smap: SourceMap,
        scope: Scope,
        key: bool,
    ) -> list[Node]:
        if kind in LAYER_KINDS:
            return [self.layer(kind, args, path, argpath, smap, scope)]
        if kind in JOINS:
            if args is None:
                self.error(
                    smap,
                    argpath,
                    f"{kind} without branches joins the values named in 'from:'",
                    f"'- {kind}:' with 'from: [a, b]' on the next line",
                )
                raise Abort
            return [self.branches(kind, args, path, argpath, smap, scope)]
        if kind == "repeat":
            return self.repeat(args, argpath, smap, scope)
        if kind in self.definitions:
            return [self.call(self.definitions[kind], args, path, argpath, smap, scope)]
        hint = kind_hint(kind, [*LAYER_KINDS, *COMBINATORS, *self.definitions])
        self.error(smap, argpath, f"unknown layer kind {kind!r}", hint, key=key)
        raise Abort

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
            value = evaluate(tree, lambda ref: self.reference(ref, scope).value)
        except ExprError as problem:
            self.expression_error(smap, path, problem)
            return None
        try:
            symbol = evaluate(tree, lambda ref: self.reference(ref, scope).symbol)
        except ExprError:
            symbol = value  # not expressible with symbols: the value itself
        used = [self.reference(ref, scope) for ref in references(tree)]
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
                    hint = "round it explicitly: int(...), round(...) or make_divisible(...)"
                self.report(replace(diagnostic, notes=notes, hint=hint))
            raise Abort from None

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


def expand(
    spec: SpecDocument,
    smap: SourceMap,
    definitions: dict[str, DefinitionSource],
    limits: Limits,
) -> tuple[Graph, set[str]]:
    """The IR graph of ``spec`` and the names of the definitions it uses."""
    expander = Expander(spec, smap, definitions, limits)
    graph = expander.run()
    return graph, set(expander.used)
