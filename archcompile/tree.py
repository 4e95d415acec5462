"""The annotated tree: the IR walked once, every node with its shapes, counts
and lowering.

:func:`annotate` is the only walker of the compiler. For each node it applies
the shape rule (``SHAPE_RULES``), the count rule (``COUNT_RULES``) and the
lowering (``LOWERING``) exactly once, and records the answers on a
:class:`Step`. ``archc shapes`` prints the steps, the live backend
instantiates their module calls, the source backend prints them; none of them
derives a shape again.

With ``source=True`` (for generated source) the walk also keeps, at the top
level, the *symbolic* view of each step (channels written with the spec's
parameters, ``num_classes``), and each generated class (one per distinct
structure of a ``define``) is walked once with symbolic inputs
(``in_channels x H x W`` and the block's parameters): its steps are the
class body the source backend prints. A call's symbolic output outside its
class is the class's output formula with the call's arguments substituted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from archcompile.ir import Block, BranchNode, CallNode, Graph, LayerNode, Node
from archcompile.lowering import ModuleCall
from archcompile.shapes import Shape
from archcompile.symbolic import Expr


@dataclass
class Step:
    """One annotated node: a block, layer, call, branch or join.

    ``shape`` is the concrete output (without batch). At the top level of a
    source tree, ``sym`` is the same shape written with the spec's parameters
    and ``sym_calls`` the lowering with them; inside a generated class both
    are written with the class's parameters (and ``shape`` is None).
    """

    name: str  # display path: block3[0].branch2[1]
    kind: str  # layer kind, definition name, "concat"/"add", "branch", "join", "block"
    node: Node | Block | None
    in_shape: Shape | None
    shape: Shape | None
    params: int = 0
    macs: int = 0  # per image
    calls: tuple[ModuleCall, ...] = ()  # what a layer lowers to (concrete)
    children: list[Step] = field(default_factory=list)
    sym_in: Shape | None = None
    sym: Shape | None = None
    sym_calls: tuple[ModuleCall, ...] = ()
    cls: GeneratedClass | None = None  # calls: the class generated for them
    branch: str | None = None  # branch steps: the branch's name

    def walk(self, depth: int, level: int = 1) -> Iterator[tuple[int, Step]]:
        yield level, self
        if level < depth:
            for child in self.children:
                yield from child.walk(depth, level + 1)


@dataclass
class GeneratedClass:
    """One class of generated source: a ``define`` with one structure."""

    definition: str
    key: tuple
    rank: int  # 3: an image (in_channels); 2: tokens, 1: a vector (in_features)
    steps: list[Step] = field(default_factory=list)
    sym_in: Shape = ()
    sym: Shape = ()
    uses: list[CallNode] = field(default_factory=list)
    #: the concrete arguments of every use (for type hints)
    values: list[tuple] = field(default_factory=list)
    #: parameters fixed in this class, with their values (not ``__init__`` arguments)
    fixed: dict[str, Any] = field(default_factory=dict)
    #: the input height and width the class is written for, if it needs them
    spatial: tuple[int, int] | None = None
    name: str = ""  # set once every class is known (variants need suffixes)


@dataclass
class Tree:
    """The whole network, annotated."""

    graph: Graph
    blocks: list[Step]
    classes: list[GeneratedClass]  # dependencies first; empty unless source=True
    source: bool

    @property
    def total_params(self) -> int:
        return sum(b.params for b in self.blocks)

    @property
    def macs_per_image(self) -> int:
        return sum(b.macs for b in self.blocks)

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def input(self) -> tuple[int, int, int]:
        return self.graph.input

    def block(self, name: str) -> Step:
        return next(b for b in self.blocks if b.name == name)

    def to_json(self, spec: str, batch: int = 1, depth: int = 1) -> dict[str, Any]:
        """What ``archc shapes --json`` prints; steps nest to ``depth``."""

        def entry(step: Step, level: int) -> dict[str, Any]:
            item: dict[str, Any] = {
                "name": step.name,
                "kind": step.kind,
                "shape": [batch, *step.shape],  # type: ignore[misc]
                "params": step.params,
                "macs": step.macs * batch,
            }
            if level < depth and step.children:
                item["children"] = [entry(c, level + 1) for c in step.children]
            return item

        return {
            "schema": 1,
            "spec": spec,
            "name": self.name,
            "input": [batch, *self.input],
            "outputs": [
                {
                    "name": o.name,
                    "shape": [batch, *self.block(o.name).shape],  # type: ignore[misc]
                    "training_only": o.training_only,
                    "loss_weight": o.loss_weight,
                }
                for o in self.graph.outputs
            ],
            "blocks": [entry(b, 1) for b in self.blocks],
            "total_params": self.total_params,
            "total_macs": self.macs_per_image * batch,
        }


def class_input(rank: int) -> Shape:
    if rank == 3:
        return (Expr.name("in_channels"), Expr.name("H"), Expr.name("W"))
    if rank == 2:  # tokens: length L, width in_features
        return (Expr.name("L"), Expr.name("in_features"))
    return (Expr.name("in_features"),)


def class_width(shape: Shape) -> Any:
    """What a generated class takes as its first argument: the channels of an
    image, the width of tokens, the features of a vector."""
    return shape[-1] if len(shape) == 2 else shape[0]


def structure(nodes: list[Node], outcomes: dict | None = None) -> tuple:
    """What makes two uses of a definition the same generated class: every node
    with its symbolic fields (values written with the block's parameters) and
    its fixed ones, less the nodes and branches whose ``if:`` was false for
    this use (``outcomes``, as the tree decided them)."""
    outcomes = outcomes or {}
    key: list[Any] = []
    for node in nodes:
        if outcomes.get(id(node)) is False:
            continue
        wiring = (node.name, node.reads)
        if isinstance(node, LayerNode):
            key.append(("layer", wiring, node.op))
        elif isinstance(node, CallNode):
            inner = structure(node.body, outcomes)
            key.append(("call", wiring, node.block, node.arguments, inner))
        elif isinstance(node, BranchNode):
            branches = tuple(
                (n, structure(b, outcomes))
                for n, b in node.branches.items()
                if outcomes.get((id(node), n)) is not False
            )
            key.append((node.node, wiring, node.singles, branches))
        else:
            key.append(("join", wiring, node.mode))
    return tuple(key)


def _name_classes(classes: list[GeneratedClass], graph: Graph) -> None:
    """Class names: the definition's (``Inception``); when one definition has
    several structures, each is suffixed with its fixed parameters
    (``StageDepth2``), or numbered when those do not tell them apart."""
    from archcompile.spec.names import class_name

    by_definition: dict[str, list[GeneratedClass]] = {}
    for cls in classes:
        by_definition.setdefault(cls.definition, []).append(cls)
    taken = {class_name(d) for d in by_definition} | {graph.name}
    for definition, variants in by_definition.items():
        base = class_name(definition)
        if len(variants) == 1:
            variants[0].name = base
            continue
        taken.discard(base)
        ranks = {cls.rank for cls in variants}
        for cls in variants:
            suffix = _variant_suffix(cls, graph, len(ranks) > 1)
            name = base + suffix
            number = 2
            while name in taken:
                name = f"{base}{suffix}V{number}"
                number += 1
            taken.add(name)
            cls.name = name


def _variant_suffix(cls: GeneratedClass, graph: Graph, ranks: bool) -> str:
    """What tells a class apart from the other structures of its definition:
    its fixed parameters, its input size, else its input rank where those
    differ; structures that differ only in what their ``if:``s left out are
    numbered (``BasicBlock``, ``BasicBlockV2``)."""
    definition = graph.definitions[cls.definition]
    parts = []
    for param in definition.params:
        for leaf in param if isinstance(param, tuple) else (param,):
            if leaf in cls.fixed:
                text = "".join(ch for ch in str(cls.fixed[leaf]).title() if ch.isalnum())
                parts.append(leaf.title().replace("_", "") + text)
    if cls.spatial is not None:
        parts.append("At" + "x".join(map(str, cls.spatial)))
    if not parts and ranks:
        parts.append({3: "Image", 2: "Tokens"}.get(cls.rank, "Vector"))
    return "".join(parts)


def annotate(graph: Graph, source: bool = False) -> Tree:
    """The annotated tree of ``graph``; raises :class:`ShapeError`.

    ``source=True`` adds the symbolic views and the generated classes that the
    source backend prints.
    """
    from archcompile.annotator import Annotator, reachable

    annotator = Annotator(graph, source)
    blocks = annotator.graph_steps()
    used = reachable(blocks)
    annotator.order = [cls for cls in annotator.order if id(cls) in used]
    arguments = annotator.argument_values()
    for cls in annotator.order:
        cls.values = arguments.get(cls.key[:3], [])
    if source:
        _name_classes(annotator.order, graph)
    return Tree(graph, blocks, annotator.order, source)


#: the report ``archc shapes`` prints is the annotated tree itself
ShapeReport = Tree

__all__ = ["GeneratedClass", "ShapeReport", "Step", "Tree", "annotate", "class_input", "structure"]
