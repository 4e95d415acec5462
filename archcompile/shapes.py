"""Static shape inference, parameter and MAC counting, in pure Python.

``SHAPE_RULES[kind](layer, shape) -> shape`` and
``COUNT_RULES[kind](layer, in_shape, out_shape) -> (params, macs)`` are the
tables of this stage. Shapes exclude the batch dimension: ``(C, H, W)`` for
images, ``(F,)`` after ``flatten``. Rules also run on symbolic dimensions for
the code generator (see :mod:`archcompile.symbolic`), so checks only fire on
known integers.

MACs are multiply-accumulates of convolutions and linear layers per image, as
fvcore counts them (bias additions, norms, pools and activations count zero).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from archcompile import layers as L
from archcompile.errors import Diagnostic, ShapeError
from archcompile.ir import INPUT, BranchNode, CallNode, Graph, LayerNode, Node, Origin
from archcompile.symbolic import Dim, Expr, mul

Shape = tuple[Dim, ...]


class ShapeProblem(Exception):
    """Raised by a rule; the walker adds the location and the shape trace."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def format_shape(shape: Shape, batch: int | str = "N") -> str:
    from archcompile.symbolic import render

    return "[" + ", ".join([str(batch), *(render(d) for d in shape)]) + "]"


def _image(layer: L.LayerSpec, shape: Shape) -> tuple[Dim, Dim, Dim]:
    if len(shape) != 3:
        raise ShapeProblem(
            f"{layer.kind} expects an image [N, C, H, W] but receives {format_shape(shape)}",
            "image layers must come before 'flatten'",
        )
    return shape  # type: ignore[return-value]


def _known(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _window(
    size: Dim,
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil: Any,
    axis: str,
) -> Dim:
    """Output length of a sliding window, as torch computes it."""
    if not _known(kernel, stride, padding, dilation):
        return None
    span = dilation * (kernel - 1) + 1
    if isinstance(size, Expr):  # inside a generic class: only "unchanged" is expressible
        return size if stride == 1 and 2 * padding == span - 1 else None
    if size is None:
        return None
    if span > size + 2 * padding:
        raise ShapeProblem(
            f"kernel {span} is larger than the padded input {size + 2 * padding} ({axis}): "
            "the output would be empty",
            "use a larger input (--input), less downsampling, or padding",
        )
    out = (size + 2 * padding - span) // stride + 1
    if ceil is True and (size + 2 * padding - span) % stride:
        out += 1
        if (out - 1) * stride >= size + padding:  # torch drops a window starting in padding
            out -= 1
    if out < 1:  # pragma: no cover - unreachable given the check above
        raise ShapeProblem(f"{axis} collapses to {out}")
    return out


def _conv_shape(layer: L.Conv, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    if _known(c, layer.groups) and c % layer.groups:
        raise ShapeProblem(f"groups ({layer.groups}) must divide the input channels ({c})")
    kh, kw = L.pair(layer.kernel)
    sh, sw = L.pair(layer.stride)
    dh, dw = L.pair(layer.dilation)
    if layer.padding == "same":
        return (layer.out, h, w)
    ph, pw = (0, 0) if layer.padding == "valid" else L.pair(layer.padding)
    return (
        layer.out,
        _window(h, kh, sh, ph, dh, False, "height"),
        _window(w, kw, sw, pw, dw, False, "width"),
    )


def _pool_shape(layer: L.MaxPool | L.AvgPool, shape: Shape) -> Shape:
    c, h, w = _image(layer, shape)
    kh, kw = L.pair(layer.kernel)
    sh, sw = L.pair(layer.effective_stride)
    ph, pw = L.pair(layer.padding)
    return (
        c,
        _window(h, kh, sh, ph, 1, layer.ceil_mode, "height"),
        _window(w, kw, sw, pw, 1, layer.ceil_mode, "width"),
    )


def _global_pool_shape(layer: L.GlobalAvgPool, shape: Shape) -> Shape:
    c, _, _ = _image(layer, shape)
    return (c, 1, 1)


def _same(layer: L.LayerSpec, shape: Shape) -> Shape:
    return shape


def _image_same(layer: L.LayerSpec, shape: Shape) -> Shape:
    _image(layer, shape)
    return shape


def _flatten_shape(layer: L.Flatten, shape: Shape) -> Shape:
    features: Dim = 1
    for dim in shape:
        features = mul(features, dim)
    return (features,)


def _linear_shape(layer: L.Linear, shape: Shape) -> Shape:
    if len(shape) != 1:
        raise ShapeProblem(
            f"linear expects [N, features] but receives {format_shape(shape)}",
            "add '- flatten' before it",
        )
    return (layer.out,)


SHAPE_RULES: dict[str, Callable[[Any, Shape], Shape]] = {
    "conv": _conv_shape,
    "maxpool": _pool_shape,
    "avgpool": _pool_shape,
    "global_avgpool": _global_pool_shape,
    "batchnorm": _same,
    "lrn": _image_same,
    "relu": _same,
    "leaky_relu": _same,
    "gelu": _same,
    "silu": _same,
    "sigmoid": _same,
    "tanh": _same,
    "dropout": _same,
    "flatten": _flatten_shape,
    "linear": _linear_shape,
}


def _prod(values: Shape) -> int:
    total = 1
    for v in values:
        total *= v  # type: ignore[operator]
    return total


def _conv_counts(layer: L.Conv, inp: Shape, out: Shape) -> tuple[int, int]:
    kh, kw = L.pair(layer.kernel)
    per_output = (inp[0] // layer.groups) * kh * kw  # type: ignore[operator]
    params = layer.out * per_output + (layer.out if layer.has_bias else 0)
    if layer.norm == "batch":
        params += 2 * layer.out
    return params, _prod(out) * per_output


def _linear_counts(layer: L.Linear, inp: Shape, out: Shape) -> tuple[int, int]:
    features = inp[0]
    return features * layer.out + (layer.out if layer.bias else 0), features * layer.out  # type: ignore[operator]


def _batchnorm_counts(layer: L.BatchNorm, inp: Shape, out: Shape) -> tuple[int, int]:
    return 2 * inp[0], 0  # type: ignore[operator]


def _free(layer: L.LayerSpec, inp: Shape, out: Shape) -> tuple[int, int]:
    return 0, 0


COUNT_RULES: dict[str, Callable[[Any, Shape, Shape], tuple[int, int]]] = {
    "conv": _conv_counts,
    "maxpool": _free,
    "avgpool": _free,
    "global_avgpool": _free,
    "batchnorm": _batchnorm_counts,
    "lrn": _free,
    "relu": _free,
    "leaky_relu": _free,
    "gelu": _free,
    "silu": _free,
    "sigmoid": _free,
    "tanh": _free,
    "dropout": _free,
    "flatten": _free,
    "linear": _linear_counts,
}


@dataclass
class Record:
    """Shape and counts of one block, layer, branch or call."""

    name: str
    kind: str
    shape: Shape  # output, without batch
    params: int = 0
    macs: int = 0  # per image
    children: list[Record] = field(default_factory=list)

    def walk(self, depth: int, level: int = 1) -> Iterator[tuple[int, Record]]:
        yield level, self
        if level < depth:
            for child in self.children:
                yield from child.walk(depth, level + 1)


@dataclass
class ShapeReport:
    """What ``archc shapes`` prints: per-block shapes and counts."""

    name: str
    input: tuple[int, int, int]
    blocks: list[Record]

    @property
    def total_params(self) -> int:
        return sum(b.params for b in self.blocks)

    @property
    def macs_per_image(self) -> int:
        return sum(b.macs for b in self.blocks)

    def block(self, name: str) -> Record:
        return next(b for b in self.blocks if b.name == name)

    def to_json(self, spec: str, batch: int = 1) -> dict[str, Any]:
        return {
            "spec": spec,
            "input": [batch, *self.input],
            "blocks": [
                {
                    "name": b.name,
                    "shape": [batch, *b.shape],
                    "params": b.params,
                    "macs": b.macs * batch,
                }
                for b in self.blocks
            ],
            "total_params": self.total_params,
            "total_macs": self.macs_per_image * batch,
        }


class _Walker:
    """Walks a block's nodes, keeping a readable trace for error messages: one
    line per top-level step of the block, plus the steps inside the composite
    block or branch being walked when an error occurs."""

    def __init__(self, symbolic: bool = False) -> None:
        self.trace: list[str] = []
        self.inner: list[str] = []
        self.calls: list[CallNode] = []
        self.depth = 0
        self.symbolic = symbolic  # Expr/None dims: no counts, no equality checks

    def fail(self, problem: ShapeProblem, origin: Origin, received: Shape) -> ShapeError:
        notes = []
        if self.trace or self.inner:
            inner = self.inner[-12:]
            skipped = len(self.inner) - len(inner)
            notes = ["shape trace of this block:", *self.trace]
            notes += [f"    ... {skipped} earlier steps"] if skipped else []
            notes += ["  " + line for line in inner]
        for call in reversed(self.calls):
            where = f" ({call.origin.file}:{call.origin.line})" if call.origin.file else ""
            notes.append(f"inside {call.block!r} used at {call.origin.path}{where}")
        message = str(problem)
        if "receives" not in message:
            message += f" (it receives {format_shape(received)})"
        return ShapeError(
            Diagnostic(
                message,
                file=origin.file,
                line=origin.line,
                column=origin.column,
                path=origin.path or None,
                hint=problem.hint,
                notes=tuple(notes),
            )
        )

    def body(self, nodes: list[Node], shape: Shape, prefix: str) -> tuple[Shape, list[Record]]:
        records = []
        for index, node in enumerate(nodes):
            record = self.node(node, shape, f"{prefix}[{index}]")
            records.append(record)
            shape = record.shape
        return shape, records

    def node(self, node: Node, shape: Shape, name: str) -> Record:
        top = self.depth == 0
        self.depth += 1
        try:
            record = self._node(node, shape, name)
        finally:
            self.depth -= 1
        label = node.op.kind if isinstance(node, LayerNode) else getattr(node, "block", node.node)
        line = f"  {node.origin.path or name}: {label} -> {format_shape(record.shape)}"
        if top:
            self.trace.append(line)
            self.inner.clear()
        else:
            self.inner.append(line)
        return record

    def _node(self, node: Node, shape: Shape, name: str) -> Record:
        if isinstance(node, LayerNode):
            kind = node.op.kind
            try:
                out = SHAPE_RULES[kind](node.op, shape)
            except ShapeProblem as problem:
                raise self.fail(problem, node.origin, shape) from None
            params, macs = (0, 0) if self.symbolic else COUNT_RULES[kind](node.op, shape, out)
            return Record(name, kind, out, params, macs)
        if isinstance(node, CallNode):
            self.calls.append(node)
            out, children = self.body(node.body, shape, name)
            self.calls.pop()
            return _total(Record(name, node.block, out, children=children))
        return self.branches(node, shape, name)

    def branches(self, node: BranchNode, shape: Shape, name: str) -> Record:
        outs: dict[str, Shape] = {}
        children = []
        for branch, nodes in node.branches.items():
            out, records = self.body(nodes, shape, f"{name}.{branch}")
            outs[branch] = out
            children.append(_total(Record(f"{name}.{branch}", "branch", out, children=records)))
        first, *others = list(outs)
        if node.node == "add":
            for other in others:
                if not self.symbolic and outs[other] != outs[first]:
                    raise self._mismatch(
                        node,
                        shape,
                        "add branches differ",
                        first,
                        other,
                        outs,
                        "every branch of 'add' must produce the same shape",
                    )
            return _total(Record(name, node.node, outs[first], children=children))
        for other, out_shape in outs.items():
            if len(out_shape) != 3:
                raise self.fail(
                    ShapeProblem(
                        f"concat branch {other} gives {format_shape(out_shape)}, not an image"
                    ),
                    node.origin,
                    shape,
                )
        for other in others:
            if not self.symbolic and outs[other][1:] != outs[first][1:]:
                raise self._mismatch(
                    node,
                    shape,
                    "concat branches differ in spatial size",
                    first,
                    other,
                    outs,
                    "concat joins on channels; height and width must match",
                )
        channels: Dim = 0
        for out_shape in outs.values():
            channels = None if channels is None or out_shape[0] is None else channels + out_shape[0]
        return _total(Record(name, node.node, (channels, *outs[first][1:]), children=children))

    def _mismatch(self, node, shape, what, first, other, outs, hint) -> ShapeError:
        return self.fail(
            ShapeProblem(
                f"{what}: {first} gives {format_shape(outs[first])}, {other} gives {format_shape(outs[other])}",
                hint,
            ),
            node.origin,
            shape,
        )


def _total(record: Record) -> Record:
    record.params = sum(c.params for c in record.children)
    record.macs = sum(c.macs for c in record.children)
    return record


def infer_shapes(graph: Graph) -> ShapeReport:
    """Shapes and counts of every block of ``graph``; raises :class:`ShapeError`."""
    outputs: dict[str, Shape] = {INPUT: graph.input}
    records = []
    for block in graph.blocks:
        walker = _Walker()
        shape = outputs[block.inputs[0]]
        walker.trace.append(f"  {block.name} receives {format_shape(shape)}")
        out, children = walker.body(block.body, shape, block.name)
        outputs[block.name] = out
        records.append(_total(Record(block.name, "block", out, children=children)))
    return ShapeReport(graph.name, graph.input, records)


def node_shape(node: Node, shape: Shape) -> Shape:
    """Output shape of one node, without counts or checks that need known sizes
    (the code generator calls it on symbolic and on concrete shapes)."""
    return _Walker(symbolic=True).node(node, shape, "").shape
