"""Uses of composite blocks (``define:``) during expansion.

Binding a call's arguments to the definition's parameters (positional or by
keyword, with destructured groups), refusing blocks that use themselves, and
the naming rules that the classes generated for composite blocks impose.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from archcompile.errors import LimitError, clipped_repr
from archcompile.ir import BranchNode, CallNode, Node
from archcompile.spec.expressions import DEFERRED
from archcompile.spec.names import GENERATED_NAMES, HELPER_CLASSES, class_name, did_you_mean
from archcompile.spec.scope import (
    Abort,
    DefinitionSource,
    Scope,
    Value,
    duplicates,
    group_name,
    tupled,
)
from archcompile.spec.source import SourceMap, SpecPath
from archcompile.spec.wiring import Body
from archcompile.symbolic import Expr, evaluate, names


class CompositeBlocks:
    """The part of :class:`~archcompile.spec.expand.Expander` about composite blocks."""

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
            elif cls in GENERATED_NAMES or cls in HELPER_CLASSES:
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
        outputs_class = f"{self.spec.name}Outputs"
        if isinstance(self.spec.outputs, list) and len(self.spec.outputs) > 1:
            if outputs_class in seen:
                self.error(
                    self.smap,
                    ("define", seen[outputs_class]),
                    f"block {seen[outputs_class]!r} would generate class {outputs_class!r}, the "
                    "named tuple of the spec's outputs",
                    key=True,
                )
            if outputs_class in self.spec.blocks:
                self.error(
                    self.smap,
                    ("blocks", outputs_class),
                    f"block name {outputs_class!r} is the class of the spec's outputs",
                    key=True,
                )
        if self.spec.name in GENERATED_NAMES or self.spec.name in HELPER_CLASSES:
            self.error(
                self.smap,
                ("name",),
                f"the spec name {self.spec.name!r} is used by the generated code itself",
            )
        # a parameter is a local variable of a generated __init__, which calls
        # the classes of the module: a parameter named like one would hide it
        classes = HELPER_CLASSES | set(seen)
        for param in self.spec.params:
            if param in classes:
                self.error(
                    self.smap,
                    ("params", param),
                    f"parameter name {param!r} is also the name of a class of the generated code",
                    "rename the parameter",
                    key=True,
                )
        for name, source in self.used.items():
            for group in source.doc.params:
                for param in group if isinstance(group, tuple) else (group,):
                    if param in classes:
                        self.error(
                            source.smap,
                            source.path + ("params",),
                            f"parameter name {param!r} of block {name!r} is also the name of a "
                            "class of the generated code",
                            "rename the parameter",
                        )

    def _check_branch_names(self, definition: DefinitionSource, body: list[Node]) -> None:
        """Branches of a composite block become attributes of its class, so two
        ``concat``/``add`` steps of one block cannot both name a branch ``main``."""
        names = [b for node in body if isinstance(node, BranchNode) for b in node.branches]
        names += [node.name for node in body if node.name and not isinstance(node, BranchNode)]
        for name in dict.fromkeys(duplicates(names)):
            self.error(
                definition.smap,
                definition.path,
                f"name {name!r} is used twice in block {definition.name!r} (branches and named "
                "layers)",
                "branches and named layers of one composite block become its attributes; give "
                "each a distinct name",
                key=True,
            )

    def _bake_arguments(self, name, params, symbols, arguments, values, scope) -> None:
        """Arguments for the parameters that fix a block's structure are passed
        as values: the enclosing class (or the model) fixes them in turn."""
        baked = self.baked.get(name, set())
        for index, param in enumerate(params):
            leaves = param if isinstance(param, tuple) else (param,)
            if not baked & set(leaves):
                continue
            if scope.stack:
                self.baked[scope.stack[-1]].update(names(symbols[index]))
            else:
                self.structural |= values[index].spec_params
            symbols[index] = arguments[index]

    # -- composite blocks ------------------------------------------------------
    def _given_arguments(
        self, definition: DefinitionSource, raw: Any, argpath: SpecPath, smap: SourceMap
    ) -> list[tuple[Any, SpecPath | None]]:
        """(raw value, path) of each parameter; path None where the definition's
        default stands in for an argument not given."""
        name = definition.name
        params = definition.doc.params
        defaults = getattr(params, "defaults", {})
        names = [group_name(p) for p in params]
        form = f"expected form: '{definition.signature()}'"
        required = len([n for n in names if n not in defaults])
        if raw is None:
            raw = []
        if isinstance(raw, list):
            if not required <= len(raw) <= len(params):
                wanted = (
                    str(len(params)) if required == len(params) else f"{required} to {len(params)}"
                )
                self.error(
                    smap,
                    argpath,
                    f"{name} takes {wanted} argument{'s' * (wanted != '1')}, got {len(raw)}",
                    form,
                )
                raise Abort
            given = [(raw[i], argpath + (i,)) for i in range(len(raw))]
            return given + [(defaults[n], None) for n in names[len(raw) :]]
        if isinstance(raw, dict):
            unknown = [k for k in raw if k not in names]
            missing = [n for n in names if n not in raw and n not in defaults]
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
                raise Abort
            return [(raw[n], argpath + (n,)) if n in raw else (defaults[n], None) for n in names]
        self.error(
            smap,
            argpath,
            f"arguments of {name} must be a list or a mapping, got {clipped_repr(raw)}",
            form,
        )
        raise Abort

    def _default(self, definition, param, raw, env, passed, scope) -> Value | None:
        """A parameter's default value: resolved among the parameters before it,
        and passed by the caller as if written there."""
        path = definition.path + ("params", definition.doc.params.index(param), param)
        inner = Scope(env, (*scope.stack, definition.name))
        value = self.resolve(raw, path, definition.smap, inner)
        if value is None:
            return None
        if value.value is DEFERRED:
            self.error(
                definition.smap,
                path,
                f"the default of {param!r} depends on the block's input size",
                "use $in_channels in the block's layers instead",
            )
            return None
        return replace(value, symbol=evaluate(value.symbol, passed))

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
            raise Abort
        if len(scope.stack) >= self.limits.max_call_depth:
            raise LimitError(
                smap.diagnostic(argpath, f"blocks nest more than {self.limits.max_call_depth} deep")
            )
        params = definition.doc.params
        given = self._given_arguments(definition, raw, argpath, smap)
        env: dict[str, Value] = {}
        arguments: list[Any] = []
        symbols: list[Any] = []
        values: list[Value] = []
        passed: dict[str, Any] = {}  # each parameter's argument, in the caller's terms
        failed = False
        for param, (raw_arg, arg_path) in zip(params, given):
            if arg_path is None:  # not given: the definition's default, in its scope
                value = self._default(definition, param, raw_arg, env, passed, scope)
            else:
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
                    f"argument {group_name(param)!r} of {name} must be a list [{', '.join(param)}], got {clipped_repr(value.value)}",
                    form,
                )
                failed = True
                continue
            for leaf, part in zip(leaves, parts):
                if isinstance(part.value, (list, dict)):
                    self.error(
                        part.where.smap,
                        part.where.path,
                        f"argument {leaf!r} of {name} must be a single value, got {clipped_repr(part.value)}",
                        form,
                    )
                    failed = True
                env[leaf] = Value(part.value, Expr.name(leaf), part.where, part.spec_params, leaf)
                passed[leaf] = part.symbol
            arguments.append(tupled(value.value))
            symbols.append(tupled(value.symbol))
            values.append(value)
        if failed:
            raise Abort
        inner = Scope(env, (*scope.stack, name))
        body = self.expand_list(
            definition.doc.layers,
            definition.path + ("layers",),
            definition.smap,
            inner,
            Body("define"),
        )
        self._bake_arguments(name, params, symbols, arguments, values, scope)
        if name not in self.used:
            self._check_branch_names(definition, body)
        self.used.setdefault(name, definition)
        return CallNode(
            block=name,
            arguments=tuple(symbols),  # as written; the values were checked above
            body=body,
            origin=self.origin(smap, path),
        )
