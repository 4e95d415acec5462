"""Expand a validated spec document into the IR :class:`~archcompile.ir.Graph`.

This is where layer lists are checked: every item is a known layer kind, a
combinator (``concat``, ``add``, ``repeat``) or a defined composite block;
``$names`` resolve in the scope of the enclosing definition (or the spec's
``params`` at top level); the spec's ``defaults`` are merged under explicit
arguments; ``repeat`` is unrolled; and every layer is validated by its model.
Problems are collected so that one run reports all of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from archcompile.errors import Diagnostic, LimitError, SpecError, clipped_repr
from archcompile.ir import (
    INPUT,
    Block,
    Definition,
    Graph,
    JoinNode,
    Node,
    Origin,
)
from archcompile.layers import COMBINATORS, LAYER_KINDS
from archcompile.limits import Limits
from archcompile.spec.combinators import JOINS, Combinators
from archcompile.spec.composite import CompositeBlocks
from archcompile.spec.init import init_rules
from archcompile.spec.kindhint import kind_hint
from archcompile.spec.layer_items import Layers
from archcompile.spec.resolve import Resolution
from archcompile.spec.schema import SpecDocument
from archcompile.spec.scope import (
    Abort,
    DefinitionSource,
    Scope,
    Value,
    Where,
)
from archcompile.spec.source import SourceMap, SpecPath, format_path
from archcompile.spec.wiring import Body, check_reached, split_item, wiring
from archcompile.spec.wiring import outputs as wired_outputs
from archcompile.symbolic import Expr


@dataclass
class Expander(CompositeBlocks, Resolution, Layers, Combinators):
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
        init, problems = init_rules(self.spec.init, self.smap)
        for problem in problems:
            self.report(problem)
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
            init=init,
        )

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
