"""The live backend: instantiate the annotated tree as ``torch.nn.Module``s.

Each layer's module calls come from the lowering table, already on the tree
(:attr:`~archcompile.tree.Step.calls`); this module only instantiates them
(``nn.<ctor>(*args, **kwargs)``) and wires blocks, branches and composite
blocks as :mod:`archcompile.backends.layout` says, so that the ``state_dict``
of a live model equals that of the generated source for the same spec.
"""

from __future__ import annotations

import copy
import linecache
from collections import OrderedDict
from typing import Any, NamedTuple, Union

import torch
from torch import Tensor, nn

from archcompile.backends.layout import (
    branch_has_module,
    is_named,
    keyed,
    members,
    sequence,
    wiring,
)
from archcompile.errors import BuildError, Diagnostic
from archcompile.ir import INPUT, BranchNode, CallNode, Graph, JoinNode, LayerNode
from archcompile.limits import DEFAULT_LIMITS
from archcompile.lowering import ModuleCall
from archcompile.modules import helper_name
from archcompile.modules import load as load_helper
from archcompile.tree import Step, Tree


def instantiate(call: ModuleCall) -> nn.Module:
    """The module a lowering row names: ``nn.<ctor>(*args, **kwargs)``, or one of
    archc's own classes (``archc:<Class>``, :mod:`archcompile.modules`)."""
    own = helper_name(call.ctor)
    ctor = load_helper(own) if own else getattr(nn, call.ctor)
    return ctor(*call.args, **dict(call.kwargs))


def join(mode: str, outputs: list[Tensor]) -> Tensor:
    """Values concatenated on channels, or summed or multiplied in order."""
    if mode == "concat":
        return torch.cat(outputs, 1)
    total = outputs[0]
    for output in outputs[1:]:
        total = total * output if mode == "mul" else total + output
    return total


#: one join of a plan: (value written, mode, values read, training only)
Join = tuple[str, str, list[str], bool]


class _Wired(nn.Module):
    """Runs its children in registration order, each on a named value, with the
    joins between them; a plan of strings and flags, so that TorchScript can
    compile ``_run`` (it unrolls the loop over ``named_children``) while the
    children stay plain attributes, with the ``state_dict`` keys they had."""

    #: child -> (value read, value written, training only)
    _calls: dict[str, tuple[str, str, bool]]
    #: child -> the joins to run just before it
    _before: dict[str, list[Join]]
    #: joins after the last child
    _after: list[Join]

    def _plan(self, steps: list[tuple[str | None, str, Any]]) -> None:
        """``steps``: in order, ("call", child, (read, written, only)) or
        ("join", None, Join); joins run before the next call."""
        self._calls, self._before, self._after = {}, {}, []
        pending: list[Join] = []
        for kind, child, item in steps:
            if kind == "join":
                pending.append(item)
            else:
                self._calls[child], self._before[child], pending = item, pending, []
        self._after = pending

    def _joins(self, values: dict[str, Tensor], joins: list[Join]) -> None:
        for target, mode, reads, only in joins:
            if self.training or not only:
                values[target] = join(mode, [values[r] for r in reads])

    def _run(self, x: Tensor) -> dict[str, Tensor]:
        values: dict[str, Tensor] = {"input": x}  # INPUT (TorchScript reads no globals)
        for name, module in self.named_children():
            self._joins(values, self._before[name])
            source, target, only = self._calls[name]
            if self.training or not only:
                values[target] = module(values[source])
        self._joins(values, self._after)
        return values


# Internal attributes of the modules below start with "_": spec names cannot,
# so a block or branch called ``mode`` or ``outputs`` never collides with them.


class Branches(nn.Module):
    """Parallel branches on one input, concatenated on channels, summed or
    multiplied (broadcasting).

    Branches are attributes named as in the spec; an identity branch has none.
    """

    def __init__(self, mode: str, branches: dict[str, nn.Module | None]) -> None:
        super().__init__()
        self._mode = mode
        self._order = list(branches)
        for name, module in branches.items():
            if module is not None:
                self.add_module(name, module)

    def forward(self, x: Tensor) -> Tensor:
        results: dict[str, Tensor] = {}
        for name, module in self.named_children():  # unrolled by TorchScript
            results[name] = module(x)
        outputs: list[Tensor] = []
        for name in self._order:
            outputs.append(results.get(name, x))
        return join(self._mode, outputs)

    def extra_repr(self) -> str:
        return f"mode={self._mode!r}"


# TorchScript reads attribute types from __annotations__ as objects, not as the
# strings `from __future__ import annotations` leaves there
_Wired.__annotations__ = {
    "_calls": dict[str, tuple[str, str, bool]],
    "_before": dict[str, list[Join]],
    "_after": list[Join],
}


class CompositeBlock(_Wired):
    """One use of a ``define:`` block: its members applied in order, each on
    the previous result or on the values its ``from:`` names."""

    def __init__(self, block: str, steps: list[tuple[str, Any, tuple[str, ...], str | None]]):
        super().__init__()
        self._block = block
        plan: list[tuple[str | None, str, Any]] = []
        keys = {INPUT: INPUT}  # spec name -> value key; step i writes "_i"
        previous = INPUT
        for index, (what, item, reads, name) in enumerate(steps):
            target = f"_{index}"
            source = keys[reads[0]] if reads else previous
            if what == "module":
                attr, module = item
                self.add_module(attr, module)
                plan.append(("call", attr, (source, target, False)))
            elif what == "branches":
                parts = []
                for branch in item._order:
                    if branch in item._modules:
                        self.add_module(branch, item._modules[branch])
                        plan.append(("call", branch, (source, f"{target}.{branch}", False)))
                        parts.append(f"{target}.{branch}")
                    else:
                        parts.append(source)
                plan.append(("join", None, (target, item._mode, parts, False)))
            else:
                plan.append(("join", None, (target, item, [keys[r] for r in reads], False)))
            if name is not None:
                keys[name] = target
            previous = target
        self._plan(plan)
        self._result = previous

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x)[self._result]

    def extra_repr(self) -> str:
        return f"block={self._block!r}"


class GraphModule(_Wired):
    """A whole network: one attribute per block, run in spec order; each block
    reads the previous one or what its ``from:`` names. Several outputs come
    back as a named tuple; training-only outputs (and the blocks only they
    need) are computed in training mode only."""

    def __init__(self, graph: Graph, blocks: dict[str, nn.Module | None]) -> None:
        super().__init__()
        self._spec_name = graph.name
        self._outputs = [(o.name, o.training_only) for o in graph.outputs]
        fields = [(o.name, Tensor | None if o.training_only else Tensor) for o in graph.outputs]
        self._result = NamedTuple(f"{graph.name}Outputs", fields)  # type: ignore[misc]
        plan: list[tuple[str | None, str, Any]] = []
        for name, reads, mode, only in wiring(graph):
            module = blocks.get(name)
            if module is None:  # a join (or an alias) and nothing else
                plan.append(("join", None, (name, mode or "add", list(reads), only)))
                continue
            self.add_module(name, module)
            source = reads[0]
            if mode:
                source = f"_join.{name}"
                plan.append(("join", None, (source, mode, list(reads), only)))
            plan.append(("call", name, (source, name, only)))
        self._plan(plan)

    @property
    def spec_name(self) -> str:
        return self._spec_name

    def forward(self, x: Tensor) -> Any:
        values = self._run(x)
        if len(self._outputs) == 1:
            return values[self._outputs[0][0]]
        main = [n for n, training_only in self._outputs if not training_only]
        if not self.training and len(main) == 1:
            return values[main[0]]
        return self._result(*(values.get(n) for n, _ in self._outputs))

    def __prepare_scriptable__(self) -> nn.Module:
        """What ``torch.jit.script`` compiles: this module, its class swapped for
        one whose ``forward`` states the return type (Tensor, or the outputs'
        named tuple), which TorchScript needs and Python cannot vary."""
        twin = copy.copy(self)  # shares the children, parameters and buffers
        twin.__class__ = _scriptable_class(self)
        return twin

    def extra_repr(self) -> str:
        return f"spec={self._spec_name!r}"


def _scriptable_class(model: GraphModule) -> type:
    """A subclass of GraphModule with a ``forward`` written for this model's
    outputs, its source registered in ``linecache`` for TorchScript to read."""
    outputs = model._outputs
    main = [n for n, only in outputs if not only]
    if len(outputs) == 1:
        returns, body = "Tensor", f"return values[{outputs[0][0]!r}]"
    else:
        fields = ", ".join(
            f"values.get({n!r})" if only else f"values[{n!r}]" for n, only in outputs
        )
        body = f"return Result({fields})"
        returns = "Result"
        if len(main) == 1:
            returns = "Union[Tensor, Result]"
            body = f"if not self.training:\n        return values[{main[0]!r}]\n    {body}"
    source = f"def forward(self, x: Tensor) -> {returns}:\n    values = self._run(x)\n    {body}\n"
    filename = f"<archc live forward {model._spec_name} {abs(hash(source))}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    scope = {"Tensor": Tensor, "Union": Union, "Result": model._result}
    exec(compile(source, filename, "exec", dont_inherit=True), scope)  # noqa: S102
    return type("GraphModule", (GraphModule,), {"forward": scope["forward"]})


class _Builder:
    def block(self, step: Step) -> nn.Module | None:
        steps = step.children
        if steps and isinstance(steps[0].node, JoinNode):
            steps = steps[1:]  # the join runs in the model's forward
        if not steps:
            return None
        if step.node.single:  # type: ignore[union-attr]
            return self.member(steps[0])
        return self.sequential(steps)

    def sequential(self, steps: list[Step]) -> nn.Module:
        children = sequence(steps)
        modules = [instantiate(c.call) if c.call else self.member(c.step) for c in children]
        if not is_named(children):
            return nn.Sequential(*modules)
        keys = [key for key, _ in keyed(children)]
        return nn.Sequential(OrderedDict(zip(keys, modules)))

    def member(self, step: Step) -> nn.Module:
        """The module of one step standing on its own (an attribute)."""
        node = step.node
        if isinstance(node, LayerNode):
            modules = [instantiate(c) for c in step.calls]
            if len(modules) == 1:
                return modules[0]
            if node.name:
                return nn.Sequential(OrderedDict((c.role, m) for c, m in zip(step.calls, modules)))
            return nn.Sequential(*modules)
        if isinstance(node, CallNode):
            return self.composite(step)
        return Branches(node.node, self.branches(step))  # type: ignore[union-attr]

    def branches(self, step: Step) -> dict[str, nn.Module | None]:
        node: BranchNode = step.node  # type: ignore[assignment]
        result: dict[str, nn.Module | None] = {}
        for child in step.children:
            name = child.branch
            if not branch_has_module(child.children):
                result[name] = None
            elif name in node.singles:
                result[name] = self.member(child.children[0])
            else:
                result[name] = self.sequential(child.children)
        return result

    def composite(self, step: Step) -> CompositeBlock:
        node: CallNode = step.node  # type: ignore[assignment]
        parts: list[tuple[str, Any, tuple[str, ...], str | None]] = []
        for member, child in zip(members([c.node for c in step.children]), step.children):
            inner = member.node
            if isinstance(inner, JoinNode):
                parts.append(("join", inner.mode, inner.reads, inner.name))
            elif member.attr is None:
                parts.append(
                    (
                        "branches",
                        Branches(inner.node, self.branches(child)),
                        inner.reads,
                        inner.name,
                    )
                )  # type: ignore[union-attr]
            else:
                parts.append(("module", (member.attr, self.member(child)), inner.reads, inner.name))
        return CompositeBlock(node.block, parts)


def check_size(tree: Tree, max_params: int = DEFAULT_LIMITS.max_params) -> int:
    """Refuse to allocate a model above ``max_params``; returns the count."""
    total = tree.total_params
    if total > max_params:
        gib = total * 4 / 2**30
        raise BuildError(
            Diagnostic(
                f"{tree.name} has {total:,} parameters ({gib:,.1f} GiB in float32), "
                f"more than the limit of {max_params:,}",
                hint="raise the limit with --max-params if this is intended",
            )
        )
    return total


def build_tree(tree: Tree, max_params: int = DEFAULT_LIMITS.max_params) -> GraphModule:
    """A live module for an annotated tree; parameters use torch's default init."""
    check_size(tree, max_params)
    builder = _Builder()
    blocks = {step.name: builder.block(step) for step in tree.blocks}
    return GraphModule(tree.graph, blocks)


def build_module(spec: Any, max_params: int = DEFAULT_LIMITS.max_params) -> GraphModule:
    """A live module for a loaded :class:`~archcompile.spec.Spec`."""
    return build_tree(spec.tree(), max_params)
