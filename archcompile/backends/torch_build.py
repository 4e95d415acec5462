"""The live backend: build ``torch.nn.Module`` objects from the IR.

``BUILDERS[kind](layer, in_shape) -> list[nn.Module]`` lowers one layer to the
modules it stands for (a conv with a norm and an activation is three). Module
structure follows :mod:`archcompile.backends.layout`, so the ``state_dict`` of
a live model equals that of the generated source for the same spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from archcompile import layers as L
from archcompile.backends.layout import INPLACE_ACTIVATIONS, branch_has_module, members
from archcompile.errors import BuildError, Diagnostic
from archcompile.ir import INPUT, BranchNode, CallNode, Graph, LayerNode, Node
from archcompile.limits import DEFAULT_LIMITS
from archcompile.shapes import SHAPE_RULES, Shape, infer_shapes

_ACTIVATIONS: dict[str, Callable[[bool], nn.Module]] = {
    "relu": lambda inplace: nn.ReLU(inplace=inplace),
    "leaky_relu": lambda inplace: nn.LeakyReLU(inplace=inplace),
    "gelu": lambda inplace: nn.GELU(),
    "silu": lambda inplace: nn.SiLU(inplace=inplace),
    "sigmoid": lambda inplace: nn.Sigmoid(),
    "tanh": lambda inplace: nn.Tanh(),
}


def _activation(name: str | None) -> list[nn.Module]:
    return [] if name is None else [_ACTIVATIONS[name](name in INPLACE_ACTIVATIONS)]


def _conv(layer: L.Conv, shape: Shape) -> list[nn.Module]:
    padding: Any = layer.padding
    modules: list[nn.Module] = [
        nn.Conv2d(
            shape[0],  # type: ignore[arg-type]
            layer.out,
            kernel_size=layer.kernel,
            stride=layer.stride,
            padding=padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.has_bias,
        )
    ]
    if layer.norm == "batch":
        modules.append(nn.BatchNorm2d(layer.out))
    return modules + _activation(layer.activation)


def _maxpool(layer: L.MaxPool, shape: Shape) -> list[nn.Module]:
    return [nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)]


def _avgpool(layer: L.AvgPool, shape: Shape) -> list[nn.Module]:
    return [
        nn.AvgPool2d(
            layer.kernel,
            layer.stride,
            layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )
    ]


def _batchnorm(layer: L.BatchNorm, shape: Shape) -> list[nn.Module]:
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return [cls(shape[0], eps=layer.eps, momentum=layer.momentum)]  # type: ignore[arg-type]


def _linear(layer: L.Linear, shape: Shape) -> list[nn.Module]:
    return [nn.Linear(shape[0], layer.out, bias=layer.bias)] + _activation(layer.activation)  # type: ignore[arg-type]


BUILDERS: dict[str, Callable[[Any, Shape], list[nn.Module]]] = {
    "conv": _conv,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "global_avgpool": lambda layer, shape: [nn.AdaptiveAvgPool2d(1)],
    "batchnorm": _batchnorm,
    "lrn": lambda layer, shape: [
        nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    ],
    "relu": lambda layer, shape: [nn.ReLU()],
    "leaky_relu": lambda layer, shape: [nn.LeakyReLU(layer.negative_slope)],
    "gelu": lambda layer, shape: [nn.GELU()],
    "silu": lambda layer, shape: [nn.SiLU()],
    "sigmoid": lambda layer, shape: [nn.Sigmoid()],
    "tanh": lambda layer, shape: [nn.Tanh()],
    "dropout": lambda layer, shape: [nn.Dropout(layer.p)],
    "flatten": lambda layer, shape: [nn.Flatten()],
    "linear": _linear,
}


def join(mode: str, outputs: list[Tensor]) -> Tensor:
    """Outputs of parallel branches concatenated on channels, or summed in order."""
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
    """One use of a ``define:`` block: its members applied in order."""

    def __init__(self, block: str, steps: list[tuple[str | None, Any]]) -> None:
        super().__init__()
        self._block = block
        self._steps: list[tuple[str, Any]] = []
        for attr, item in steps:
            if isinstance(item, Branches):
                for name in item._order:
                    if name in item._modules:
                        self.add_module(name, item._modules[name])
                self._steps.append(("branches", (item._mode, item._order)))
            else:
                self.add_module(attr, item)  # type: ignore[arg-type]
                self._steps.append(("module", attr))

    def forward(self, x: Tensor) -> Tensor:
        for step, value in self._steps:
            if step == "module":
                x = self._modules[value](x)
            else:
                mode, order = value
                x = join(mode, [self._modules[n](x) if n in self._modules else x for n in order])
        return x

    def extra_repr(self) -> str:
        return f"block={self._block!r}"


class GraphModule(nn.Module):
    """A whole network: one attribute per block, applied in graph order."""

    def __init__(self, graph: Graph, blocks: dict[str, nn.Module]) -> None:
        super().__init__()
        self._spec_name = graph.name
        self._wiring = [(block.name, block.inputs) for block in graph.blocks]
        self._outputs = list(graph.outputs)
        for name, module in blocks.items():
            self.add_module(name, module)

    @property
    def spec_name(self) -> str:
        return self._spec_name

    def forward(self, x: Tensor) -> Tensor:
        values = {INPUT: x}
        for name, inputs in self._wiring:
            values[name] = self._modules[name](values[inputs[0]])
        return values[self._outputs[0]]

    def extra_repr(self) -> str:
        return f"spec={self._spec_name!r}"


class _Builder:
    def modules(self, nodes: list[Node], shape: Shape) -> tuple[list[nn.Module], Shape]:
        """Flat list of modules for a body (as inside an ``nn.Sequential``)."""
        result: list[nn.Module] = []
        for node in nodes:
            built, shape = self.node(node, shape)
            result.extend(built)
        return result, shape

    def node(self, node: Node, shape: Shape) -> tuple[list[nn.Module], Shape]:
        if isinstance(node, LayerNode):
            return BUILDERS[node.op.kind](node.op, shape), SHAPE_RULES[node.op.kind](node.op, shape)
        if isinstance(node, CallNode):
            module, out = self.composite(node, shape)
            return [module], out
        branches, out = self.branches(node, shape)
        return [Branches(node.node, branches)], out

    def branches(self, node: BranchNode, shape: Shape) -> tuple[dict[str, nn.Module | None], Shape]:
        result: dict[str, nn.Module | None] = {}
        outs = []
        for name, nodes in node.branches.items():
            modules, out = self.modules(nodes, shape)
            result[name] = nn.Sequential(*modules) if branch_has_module(nodes) else None
            outs.append(out)
        if node.node == "add":
            return result, outs[0]
        return result, (sum(o[0] for o in outs), *outs[0][1:])  # type: ignore[misc]

    def composite(self, node: CallNode, shape: Shape) -> tuple[CompositeBlock, Shape]:
        """The module for one use of a composite block, and its output shape
        (each member is built once: nested blocks must not multiply the work)."""
        steps: list[tuple[str | None, Any]] = []
        for member in members(node.body):
            if member.attr is None:
                branches, shape = self.branches(member.node, shape)  # type: ignore[arg-type]
                steps.append((None, Branches(member.node.node, branches)))  # type: ignore[union-attr]
                continue
            modules, shape = self.node(member.node, shape)
            steps.append(
                (member.attr, modules[0] if len(modules) == 1 else nn.Sequential(*modules))
            )
        return CompositeBlock(node.block, steps), shape


def check_size(graph: Graph, max_params: int = DEFAULT_LIMITS.max_params) -> int:
    """Refuse to allocate a model above ``max_params``; returns the count."""
    total = infer_shapes(graph).total_params
    if total > max_params:
        gib = total * 4 / 2**30
        raise BuildError(
            Diagnostic(
                f"{graph.name} has {total:,} parameters ({gib:,.1f} GiB in float32), "
                f"more than the limit of {max_params:,}",
                hint="raise the limit with --max-params if this is intended",
            )
        )
    return total


def build_graph(graph: Graph, max_params: int = DEFAULT_LIMITS.max_params) -> GraphModule:
    """A live module for ``graph``; parameters use torch's default init."""
    check_size(graph, max_params)
    builder = _Builder()
    shapes: dict[str, Shape] = {INPUT: graph.input}
    blocks: dict[str, nn.Module] = {}
    for block in graph.blocks:
        modules, shapes[block.name] = builder.modules(block.body, shapes[block.inputs[0]])
        blocks[block.name] = nn.Sequential(*modules)
    return GraphModule(graph, blocks)


def build_module(spec: Any, max_params: int = DEFAULT_LIMITS.max_params) -> GraphModule:
    """A live module for a loaded :class:`~archcompile.spec.Spec`."""
    return build_graph(spec.graph, max_params)
