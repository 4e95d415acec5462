"""The live backend: instantiate the annotated tree as ``torch.nn.Module``s.

Each layer's module calls come from the lowering table, already on the tree
(:attr:`~archcompile.tree.Step.calls`); this module only instantiates them
(``nn.<ctor>(*args, **kwargs)``) and wires blocks, branches and composite
blocks as :mod:`archcompile.backends.layout` says, so that the ``state_dict``
of a live model equals that of the generated source for the same spec.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any

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
from archcompile.tree import Step, Tree


def instantiate(call: ModuleCall) -> nn.Module:
    """The module a lowering row names: ``nn.<ctor>(*args, **kwargs)``."""
    return getattr(nn, call.ctor)(*call.args, **dict(call.kwargs))


def join(mode: str, outputs: list[Tensor]) -> Tensor:
    """Values concatenated on channels, or summed in order."""
    if mode == "concat":
        return torch.cat(outputs, 1)
    total = outputs[0]
    for output in outputs[1:]:
        total = total + output
    return total


# Internal attributes of the modules below start with "_": spec names cannot,
# so a block or branch called ``mode`` or ``outputs`` never collides with them.


class Branches(nn.Module):
    """Parallel branches on one input, concatenated on channels or summed.

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
        return join(
            self._mode, [self._modules[n](x) if n in self._modules else x for n in self._order]
        )

    def extra_repr(self) -> str:
        return f"mode={self._mode!r}"


class CompositeBlock(nn.Module):
    """One use of a ``define:`` block: its members applied in order, each on
    the previous result or on the values its ``from:`` names."""

    def __init__(self, block: str, steps: list[tuple[str, Any, tuple[str, ...], str | None]]):
        super().__init__()
        self._block = block
        #: (what, payload, reads, name): "module" attr | "branches" (mode, order)
        #: | "join" mode
        self._steps: list[tuple[str, Any, tuple[str, ...], str | None]] = []
        for what, item, reads, name in steps:
            if what == "module":
                attr, module = item
                self.add_module(attr, module)
                item = attr
            elif what == "branches":
                for branch in item._order:
                    if branch in item._modules:
                        self.add_module(branch, item._modules[branch])
                item = (item._mode, item._order)
            self._steps.append((what, item, reads, name))

    def forward(self, x: Tensor) -> Tensor:
        values = {INPUT: x}
        for what, item, reads, name in self._steps:
            inp = values[reads[0]] if reads else x
            if what == "module":
                x = self._modules[item](inp)
            elif what == "branches":
                mode, order = item
                x = join(
                    mode, [self._modules[n](inp) if n in self._modules else inp for n in order]
                )
            else:
                x = join(item, [values[r] for r in reads])
            if name is not None:
                values[name] = x
        return x

    def extra_repr(self) -> str:
        return f"block={self._block!r}"


class GraphModule(nn.Module):
    """A whole network: one attribute per block, run in spec order; each block
    reads the previous one or what its ``from:`` names. Several outputs come
    back as a named tuple; training-only outputs (and the blocks only they
    need) are computed in training mode only."""

    def __init__(self, graph: Graph, blocks: dict[str, nn.Module | None]) -> None:
        super().__init__()
        self._spec_name = graph.name
        self._wiring = wiring(graph)
        self._outputs = [(o.name, o.training_only) for o in graph.outputs]
        self._result = namedtuple(f"{graph.name}Outputs", [n for n, _ in self._outputs])  # type: ignore[misc]
        for name, module in blocks.items():
            if module is not None:
                self.add_module(name, module)

    @property
    def spec_name(self) -> str:
        return self._spec_name

    def forward(self, x: Tensor) -> Any:
        values = {INPUT: x}
        for name, reads, mode, training_only in self._wiring:
            if training_only and not self.training:
                continue
            value = join(mode, [values[r] for r in reads]) if mode else values[reads[0]]
            module = self._modules.get(name)
            values[name] = module(value) if module is not None else value
        if len(self._outputs) == 1:
            return values[self._outputs[0][0]]
        main = [n for n, training_only in self._outputs if not training_only]
        if not self.training and len(main) == 1:
            return values[main[0]]
        return self._result(*(values.get(n) for n, _ in self._outputs))

    def extra_repr(self) -> str:
        return f"spec={self._spec_name!r}"


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
        for (name, nodes), child in zip(node.branches.items(), step.children):
            if not branch_has_module(nodes):
                result[name] = None
            elif name in node.singles:
                result[name] = self.member(child.children[0])
            else:
                result[name] = self.sequential(child.children)
        return result

    def composite(self, step: Step) -> CompositeBlock:
        node: CallNode = step.node  # type: ignore[assignment]
        parts: list[tuple[str, Any, tuple[str, ...], str | None]] = []
        for member, child in zip(members(node.body), step.children):
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
