"""The typed intermediate representation every backend reads.

A :class:`Graph` is a set of named :class:`Block` nodes, each reading the
outputs of earlier blocks (``inputs``) and holding a body: a list of nodes that
is applied in order. Nodes are layers (:class:`LayerNode`), parallel branches
joined by concatenation or summation (:class:`BranchNode`), and uses of a
defined composite block (:class:`CallNode`), whose body is the definition
expanded with the call's arguments.

Everything here is validated: ``repeat`` is unrolled and defaults applied.
Values are kept as written, once: a field or argument written ``$name`` is
:class:`~archcompile.symbolic.Expr` ``name`` over the enclosing scope (the
spec's ``params`` at top level, the definition's parameters inside a call),
every other value is plain. The annotated tree (:mod:`archcompile.tree`)
evaluates them in the scope's environment for real shapes, and keeps them
symbolic for generated source. Values that decide structure (repeat counts,
activations, norms chosen through a definition's parameter) are kept as
their values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from archcompile.layers import Layer


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class Origin(_Node):
    """Where a node was written: file position and spec path."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""


class Condition(_Node):
    """An ``if:``: the parsed expression (:mod:`archcompile.spec.expressions`),
    computed by the tree with the values in scope and the input's size."""

    expr: Any
    text: str
    origin: Origin = Origin()
    #: the column of the text's first character (the origin is the value's)
    offset: int = 0


class _Step(_Node):
    """What every node of a body may carry: a chosen name (its attribute, and a
    value later nodes can read), the names it reads instead of the previous
    node's output (``from:``) and the condition it is used under (``if:``)."""

    name: str | None = None
    reads: tuple[str, ...] = ()
    when: Condition | None = None


class LayerNode(_Step):
    """One layer of a built-in kind."""

    node: Literal["layer"] = "layer"
    #: the layer as written: ``$name`` fields are ``Expr`` (not evaluated)
    op: Layer
    origin: Origin = Origin()
    #: fields known only with the input's size (``$in_channels``), and where
    #: each was written: the tree validates the layer once they are known
    deferred: tuple[tuple[str, Origin], ...] = ()


class BranchNode(_Step):
    """Parallel branches on the same input, joined on channels (``concat``),
    summed (``add``) or multiplied with broadcasting (``mul``); an empty branch
    is the identity."""

    node: Literal["concat", "add", "mul"]
    branches: dict[str, list[Node]]
    #: branches written as one item rather than a list: the module itself,
    #: not an ``nn.Sequential`` around it
    singles: frozenset[str] = frozenset()
    #: branches present only under a condition (``{if: ..., layers: [...]}``)
    conditions: dict[str, Condition] = {}
    origin: Origin = Origin()


class JoinNode(_Step):
    """Several named values joined on channels (``concat``), summed (``add``)
    or multiplied (``mul``): ``- concat:`` with ``from: [a, b]``. It has no module."""

    node: Literal["join"] = "join"
    mode: Literal["concat", "add", "mul"]
    origin: Origin = Origin()


class CallNode(_Step):
    """A use of a composite block from a ``define:`` section."""

    node: Literal["call"] = "call"
    block: str
    #: positional arguments as written, destructured groups as tuples:
    #: (64, (96, 128), ...), with ``Expr`` where a ``$name`` was passed
    arguments: tuple[Any, ...]
    body: list[Node]
    origin: Origin = Origin()


Node = Annotated[LayerNode | BranchNode | JoinNode | CallNode, Field(discriminator="node")]


class Definition(_Node):
    """A composite block of a ``define:`` section, kept for code generation."""

    name: str
    #: parameter names; a nested list is one destructured argument
    params: tuple[Any, ...]
    doc: str | None = None
    origin: Origin = Origin()
    #: parameters that decide the structure (a ``repeat`` count, an activation
    #: or norm): generated source has one class per combination of their values
    baked: frozenset[str] = frozenset()


class Block(_Node):
    """A named stage of the network; its name becomes a module attribute."""

    name: str
    body: list[Node]
    #: written as one item rather than a list: the block is that module itself
    single: bool = False
    origin: Origin = Origin()


class Output(_Node):
    """One result of the network's ``forward``."""

    name: str  # a block name
    #: computed and returned only in training mode (auxiliary classifiers)
    training_only: bool = False
    #: weight of its loss in ``archc train``
    loss_weight: float = 1.0


class Graph(_Node):
    """A whole network."""

    name: str
    description: str | None = None
    input: tuple[int, int, int]  # channels, height, width (batch is symbolic)
    params: dict[str, Any]
    blocks: list[Block]
    outputs: tuple[Output, ...]
    definitions: dict[str, Definition]
    #: spec parameters that change spatial sizes, repeat counts or which modules
    #: a layer becomes (or reach a composite block through defaults): generated
    #: source bakes their values in instead of exposing them as arguments
    structural_params: frozenset[str] = frozenset()


INPUT = "input"


def block_reads(blocks: list[Block]) -> dict[str, tuple[str, ...]]:
    """What each block reads: what its first node's ``from:`` names, else the
    block before it (the first block reads the network input)."""
    reads: dict[str, tuple[str, ...]] = {}
    previous = INPUT
    for block in blocks:
        reads[block.name] = (block.body[0].reads if block.body else ()) or (previous,)
        previous = block.name
    return reads


def reached(reads: dict[str, tuple[str, ...]], names: list[str]) -> set[str]:
    """The blocks ``names`` need, themselves included, following ``reads``."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in reads:
            continue
        seen.add(name)
        stack += reads[name]
    return seen


BranchNode.model_rebuild()
CallNode.model_rebuild()
