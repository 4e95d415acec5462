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

from pydantic import ValidationError

from archcompile.errors import Diagnostic, LimitError, SpecError
from archcompile.ir import (
    INPUT,
    Block,
    BranchNode,
    CallNode,
    Definition,
    Graph,
    LayerNode,
    Node,
    Origin,
)
from archcompile.layers import COMBINATORS, LAYER_KINDS
from archcompile.limits import Limits
from archcompile.spec.diagnose import validation_diagnostics
from archcompile.spec.names import (
    GENERATED_NAMES,
    attribute_problem,
    class_name,
    did_you_mean,
)
from archcompile.spec.schema import DefinitionDoc, SpecDocument
from archcompile.spec.source import SourceMap, SpecPath, format_path
from archcompile.symbolic import Expr


@dataclass(frozen=True)
class DefinitionSource:
    """A ``define:`` entry together with where it was written."""

    name: str
    doc: DefinitionDoc
    smap: SourceMap
    path: SpecPath

    def signature(self) -> str:
        parts = ["[" + ", ".join(p) + "]" if isinstance(p, tuple) else p for p in self.doc.params]
        return f"{self.name}: [{', '.join(parts)}]"


@dataclass(frozen=True)
class Where:
    smap: SourceMap
    path: SpecPath


@dataclass(frozen=True)
class Value:
    """A resolved value: concrete, symbolic (for codegen), and where it came from."""

    value: Any
    symbol: Any
    where: Where
    spec_params: frozenset[str] = frozenset()
    name: str | None = None  # the $name it was bound to, if any
    items: tuple[Value, ...] = ()  # elements, for lists


@dataclass(frozen=True)
class Scope:
    names: dict[str, Value]
    stack: tuple[str, ...] = ()  # definitions being expanded, outermost first


class _Abort(Exception):
    """Stop expanding one item; its diagnostic is already recorded."""


def _has_expr(value: Any) -> bool:
    if isinstance(value, Expr):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_expr(v) for v in value)
    return False


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def _group_name(param: str | tuple[str, ...]) -> str:
    """A destructured group ``[c2_reduce, c2]`` is passed as one argument named
    after its last element (``c2``), as torchvision's Inception does."""
    return param[-1] if isinstance(param, tuple) else param


@dataclass
class Expander:
    spec: SpecDocument
    smap: SourceMap
    definitions: dict[str, DefinitionSource]
    limits: Limits
    diagnostics: list[Diagnostic] = field(default_factory=list)
    layer_count: int = 0
    structural: set[str] = field(default_factory=set)
    used: dict[str, DefinitionSource] = field(default_factory=dict)
    unrolled: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

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
        diagnostic = replace(smap.diagnostic(path, message, hint=hint, key=key), notes=notes)
        if diagnostic not in self.diagnostics:
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
        previous = INPUT
        for name, items in self.spec.blocks.items():
            path: SpecPath = ("blocks", name)
            if not items:
                self.error(self.smap, path, f"block {name!r} has no layers")
                continue
            body = self.expand_list(items, path, self.smap, scope)
            blocks.append(
                Block(
                    name=name,
                    inputs=(previous,),
                    body=body,
                    origin=self.origin(self.smap, path),
                )
            )
            previous = name
        self._check_class_names()
        if self.diagnostics:
            raise SpecError(self.diagnostics)
        return Graph(
            name=self.spec.name,
            description=self.spec.description,
            input=self.spec.input,
            params=dict(self.spec.params),
            blocks=blocks,
            outputs=(previous,),
            definitions={
                name: Definition(
                    name=name,
                    params=source.doc.params,
                    doc=source.doc.doc,
                    origin=self.origin(source.smap, source.path),
                    unrolled=frozenset(self.unrolled.get(name, ())),
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
                hint = (
                    did_you_mean(kind, LAYER_KINDS)
                    or "defaults are keyed by layer kind, such as conv"
                )
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
                value = self.resolve(raw, path + (name,), self.smap, scope)
                if value is not None:
                    result[kind][name] = value
        return result

    def _check_class_names(self) -> None:
        seen: dict[str, str] = {}
        for name in self.used:
            cls = class_name(name)
            if cls == self.spec.name:
                self.error(
                    self.smap,
                    ("name",),
                    f"the spec name {cls!r} clashes with the class generated for block {name!r}",
                    "rename the spec or the block",
                )
            elif cls in GENERATED_NAMES:
                self.error(
                    self.smap,
                    ("define", name),
                    f"block {name!r} would generate a class named {cls!r}, which the generated code uses itself",
                    key=True,
                )
            if cls in seen:
                self.error(
                    self.smap,
                    ("define", name),
                    f"blocks {seen[cls]!r} and {name!r} would both generate class {cls!r}",
                    key=True,
                )
            seen[cls] = name
        if self.spec.name in GENERATED_NAMES:
            self.error(
                self.smap,
                ("name",),
                f"the spec name {self.spec.name!r} is used by the generated code itself",
            )

    # -- lists and items ---------------------------------------------------
    def expand_list(self, items: Any, path: SpecPath, smap: SourceMap, scope: Scope) -> list[Node]:
        if not isinstance(items, list):
            self.error(smap, path, f"expected a list of layers, got {_shown(items)}")
            return []
        nodes: list[Node] = []
        for index, item in enumerate(items):
            try:
                nodes.extend(self.item(item, path + (index,), smap, scope))
            except _Abort:
                pass
        return nodes

    def item(self, item: Any, path: SpecPath, smap: SourceMap, scope: Scope) -> list[Node]:
        if isinstance(item, str):
            kind, args, argpath = item, None, path
        elif isinstance(item, dict) and len(item) == 1:
            ((kind, args),) = item.items()
            argpath = path + (kind,)
        elif isinstance(item, dict):
            self.error(
                smap,
                path,
                "a layer is a mapping with exactly one key, its kind; got "
                + ", ".join(map(repr, item))
                if item
                else "a layer cannot be an empty mapping",
                "arguments go inside the kind's mapping: '- conv: {out: 64, kernel: 3}'",
            )
            raise _Abort
        else:
            self.error(
                smap,
                path,
                f"expected a layer (a kind, or {{kind: arguments}}), got {_shown(item)}",
            )
            raise _Abort
        if kind in LAYER_KINDS:
            return [self.layer(kind, args, path, argpath, smap, scope)]
        if kind in ("concat", "add"):
            return [self.branches(kind, args, path, argpath, smap, scope)]
        if kind == "repeat":
            return self.repeat(args, argpath, smap, scope)
        if kind in self.definitions:
            return [self.call(self.definitions[kind], args, path, argpath, smap, scope)]
        known = [*LAYER_KINDS, *COMBINATORS, *self.definitions]
        hint = did_you_mean(kind, known) or "see docs/spec-language.md for the layer kinds"
        self.error(
            smap,
            argpath,
            f"unknown layer kind {kind!r}",
            hint,
            key=isinstance(item, dict),
        )
        raise _Abort

    def resolve(self, raw: Any, path: SpecPath, smap: SourceMap, scope: Scope) -> Value | None:
        """Substitute ``$names`` in ``raw``; None (and a diagnostic) if undefined."""
        if isinstance(raw, str) and raw.startswith("$"):
            name = raw[1:]
            if name in scope.names:
                return scope.names[name]
            available = sorted(scope.names)
            hint = did_you_mean(name, available) or (
                "names in scope here: " + ", ".join("$" + n for n in available)
                if available
                else "no names are in scope here"
            )
            self.error(smap, path, f"undefined name ${name}", hint)
            return None
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
        if isinstance(raw, dict):
            self.error(smap, path, f"expected a value, got a mapping {_shown(raw)}")
            return None
        return Value(raw, raw, Where(smap, path))

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
                f"arguments of {kind!r} must be a mapping, got {_shown(args)}",
                f"write '- {kind}: {{{example}}}'",
            )
            raise _Abort
        values = {}
        for name, value in self.defaults.get(kind, {}).items():
            if scope.stack and _has_expr(value.symbol):
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
            value = self.resolve(raw, argpath + (name,), smap, scope)
            if value is None:
                failed = True
            else:
                values[name] = value
        if failed:
            raise _Abort
        try:
            op = model.model_validate({name: value.value for name, value in values.items()})
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
                    at = f" ({mark.file}:{mark.line})" if mark else ""
                    notes = (
                        f"${bound.name} is used as {field_name!r} of {kind} at {format_path(argpath)}{at}",
                    )
                if diagnostic not in self.diagnostics:
                    self.diagnostics.append(replace(diagnostic, notes=notes))
            raise _Abort from None
        for name in model.structural_fields & values.keys():
            self.structural |= values[name].spec_params
        self.layer_count += 1
        if self.layer_count > self.limits.max_layers:
            raise LimitError(
                smap.diagnostic(
                    path,
                    f"the network expands to more than {self.limits.max_layers:,} layers",
                    hint="check repeat counts",
                )
            )
        symbols = {name: _tupled(v.symbol) for name, v in values.items() if _has_expr(v.symbol)}
        return LayerNode(op=op, symbols=symbols, origin=self.origin(smap, path))

    def branches(
        self,
        kind: str,
        raw: Any,
        path: SpecPath,
        argpath: SpecPath,
        smap: SourceMap,
        scope: Scope,
    ) -> BranchNode:
        what = "joined on channels" if kind == "concat" else "summed; [] is the identity"
        if not isinstance(raw, dict) or len(raw) < 2:
            self.error(
                smap,
                argpath,
                f"{kind} takes a mapping of two or more named branches ({what})",
                f"'- {kind}: {{main: [...], shortcut: []}}'",
            )
            raise _Abort
        branches: dict[str, list[Node]] = {}
        for name, items in raw.items():
            problem = attribute_problem(name, "branch")
            if problem:
                self.error(smap, argpath + (name,), problem, key=True)
                continue
            branches[name] = self.expand_list(
                [] if items is None else items, argpath + (name,), smap, scope
            )
        return BranchNode(node=kind, branches=branches, origin=self.origin(smap, path))  # type: ignore[arg-type]

    def repeat(self, raw: Any, argpath: SpecPath, smap: SourceMap, scope: Scope) -> list[Node]:
        if not isinstance(raw, dict) or set(raw) != {"times", "layers"}:
            self.error(
                smap,
                argpath,
                "repeat takes exactly {times: N, layers: [...]}",
                "'- repeat: {times: 2, layers: [{conv: {out: 64, kernel: 3}}]}'",
            )
            raise _Abort
        times = self.resolve(raw["times"], argpath + ("times",), smap, scope)
        if times is None:
            raise _Abort
        count = times.value
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            self.error(
                times.where.smap,
                times.where.path,
                f"repeat times must be a positive integer, got {_shown(count)}",
            )
            raise _Abort
        if count > self.limits.max_layers:
            raise LimitError(
                times.where.smap.diagnostic(
                    times.where.path,
                    f"repeat {count:,} times exceeds the limit of {self.limits.max_layers:,} layers",
                )
            )
        self.structural |= times.spec_params
        if isinstance(times.symbol, Expr) and scope.stack:
            self.unrolled[scope.stack[-1]].update(name for name, _ in times.symbol.terms)
        nodes: list[Node] = []
        for _ in range(count):
            before = len(self.diagnostics)
            nodes += self.expand_list(raw["layers"], argpath + ("layers",), smap, scope)
            if len(self.diagnostics) > before:
                break
        return nodes

    def _check_branch_names(self, definition: DefinitionSource, body: list[Node]) -> None:
        """Branches of a composite block become attributes of its class, so two
        ``concat``/``add`` steps of one block cannot both name a branch ``main``."""
        names = [b for node in body if isinstance(node, BranchNode) for b in node.branches]
        for name in dict.fromkeys(_duplicates(names)):
            self.error(
                definition.smap,
                definition.path,
                f"branch name {name!r} is used twice in block {definition.name!r}",
                "branches of one composite block become its attributes; give each a distinct name",
                key=True,
            )

    # -- composite blocks ------------------------------------------------------
    def call(
        self,
        definition: DefinitionSource,
        raw: Any,
        path: SpecPath,
        argpath: SpecPath,
        smap: SourceMap,
        scope: Scope,
    ) -> CallNode:
        name = definition.name
        form = f"expected form: '{definition.signature()}'"
        if name in scope.stack:
            cycle = " -> ".join((*scope.stack[scope.stack.index(name) :], name))
            self.error(
                smap,
                argpath,
                f"block {name!r} uses itself: {cycle}",
                "a block cannot contain itself, directly or through another",
                key=True,
            )
            raise _Abort
        if len(scope.stack) >= self.limits.max_call_depth:
            raise LimitError(
                smap.diagnostic(argpath, f"blocks nest more than {self.limits.max_call_depth} deep")
            )
        params = definition.doc.params
        names = [_group_name(p) for p in params]
        if raw is None:
            raw = []
        if isinstance(raw, list):
            if len(raw) != len(params):
                self.error(
                    smap,
                    argpath,
                    f"{name} takes {len(params)} argument{'s' * (len(params) != 1)}, got {len(raw)}",
                    form,
                )
                raise _Abort
            given = [(raw[i], argpath + (i,)) for i in range(len(params))]
        elif isinstance(raw, dict):
            unknown = [k for k in raw if k not in names]
            missing = [n for n in names if n not in raw]
            for k in unknown:
                self.error(
                    smap,
                    argpath + (k,),
                    f"{name} has no parameter {k!r}",
                    did_you_mean(k, names) or form,
                    key=True,
                )
            for n in missing:
                self.error(smap, argpath, f"{name} needs parameter {n!r}", form)
            if unknown or missing:
                raise _Abort
            given = [(raw[n], argpath + (n,)) for n in names]
        else:
            self.error(
                smap,
                argpath,
                f"arguments of {name} must be a list or a mapping, got {_shown(raw)}",
                form,
            )
            raise _Abort
        env: dict[str, Value] = {}
        arguments, symbols = [], []
        failed = False
        for param, (raw_arg, arg_path) in zip(params, given):
            value = self.resolve(raw_arg, arg_path, smap, scope)
            if value is None:
                failed = True
                continue
            leaves = param if isinstance(param, tuple) else (param,)
            parts = value.items if isinstance(param, tuple) else (value,)
            if isinstance(param, tuple) and (
                not isinstance(value.value, list) or len(value.value) != len(param)
            ):
                self.error(
                    smap,
                    arg_path,
                    f"argument {_group_name(param)!r} of {name} must be a list [{', '.join(param)}], got {_shown(value.value)}",
                    form,
                )
                failed = True
                continue
            for leaf, part in zip(leaves, parts):
                if isinstance(part.value, (list, dict)):
                    self.error(
                        part.where.smap,
                        part.where.path,
                        f"argument {leaf!r} of {name} must be a single value, got {_shown(part.value)}",
                        form,
                    )
                    failed = True
                env[leaf] = Value(part.value, Expr.name(leaf), part.where, part.spec_params, leaf)
            arguments.append(_tupled(value.value))
            symbols.append(_tupled(value.symbol))
        if failed:
            raise _Abort
        inner = Scope(env, (*scope.stack, name))
        body = self.expand_list(
            definition.doc.layers, definition.path + ("layers",), definition.smap, inner
        )
        if name not in self.used:
            self._check_branch_names(definition, body)
        self.used.setdefault(name, definition)
        return CallNode(
            block=name,
            arguments=tuple(arguments),
            symbols=tuple(symbols),
            body=body,
            origin=self.origin(smap, path),
        )


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    return repeated


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
