"""How IR bodies map onto module attributes; shared by both backends.

The live builder and the code generator must produce modules with identical
``state_dict`` keys so that weights move between them. Both therefore take
their structure from here:

* a block is an ``nn.Sequential`` of the modules its layers lower to;
* a defined composite block is a class whose attributes are its *members*:
  the branches of a ``concat``/``add`` by their names (identity branches have
  no attribute), other layers by their kind (``conv``, or ``conv1``,
  ``conv2``... when there are several);
* a layer given a ``name:`` is the attribute of that name; when it lowers to
  several modules they are its children, named by their roles
  (``conv``, ``bn``, ``relu``: torchvision's ``BasicConv2d``);
* a block or branch written as one item (not a list) is that module itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from archcompile.ir import (
    BranchNode,
    CallNode,
    Graph,
    JoinNode,
    LayerNode,
    Node,
    block_reads,
    reached,
)
from archcompile.lowering import ModuleCall


@dataclass(frozen=True)
class Member:
    """One step of a composite block's ``forward``."""

    node: Node
    attr: str | None  # attribute name for layers and calls; None for branch nodes


def _base_name(node: Node) -> str:
    if isinstance(node, LayerNode):
        return node.op.kind
    if isinstance(node, CallNode):
        return node.block
    raise TypeError(node)  # pragma: no cover


def members(body: list[Node]) -> list[Member]:
    """Attribute names for the steps of a composite block.

    A kind or block used once keeps its name (``conv``); used several times it
    is numbered (``conv1``, ``conv2``), skipping every name already taken by a
    branch or another member, so that no two steps share an attribute.
    """
    branches = {name for node in body if isinstance(node, BranchNode) for name in node.branches}
    named = {node.name for node in body if node.name and not _no_module(node)}
    counts = Counter(_base_name(n) for n in body if not _no_module(n) and not n.name)
    plain = {
        base
        for base, count in counts.items()
        if count == 1 and base not in branches and base not in named
    }
    taken = branches | plain | named
    seen: Counter[str] = Counter()
    result = []
    for node in body:
        if _no_module(node):
            result.append(Member(node, None))
            continue
        if node.name:
            result.append(Member(node, node.name))
            continue
        base = _base_name(node)
        if base in plain:
            result.append(Member(node, base))
            continue
        while True:
            seen[base] += 1
            name = f"{base}{seen[base]}"
            if name not in taken:
                break
        taken.add(name)
        result.append(Member(node, name))
    return result


def _no_module(node: Node) -> bool:
    """Branch nodes give their branches as attributes; joins have no module."""
    return isinstance(node, (BranchNode, JoinNode))


def branch_has_module(steps: list) -> bool:
    """A branch without steps (written empty, or every layer left out by its
    ``if:``) is the identity and has no module."""
    return bool(steps)


@dataclass(frozen=True)
class Child:
    """One child of an ``nn.Sequential`` body: a module call of an unnamed
    layer (``key`` None: positional), or a whole step under its name."""

    key: str | None
    step: object  # archcompile.tree.Step
    call: ModuleCall | None = None  # set for the pieces of an unnamed layer


def sequence(steps: list, symbolic: bool = False) -> list[Child]:
    """The children of a block or branch written as a list. An unnamed layer
    adds its modules one by one (``block1.0``, ``block1.1``), as archc always
    did; a named layer is one child under its name (a group of named modules
    when it lowers to several: ``conv1.conv``, ``conv1.bn``)."""
    children = []
    for step in steps:
        node = step.node
        if isinstance(node, LayerNode) and not node.name:
            calls = step.sym_calls if symbolic else step.calls
            children += [Child(None, step, call) for call in calls]
        else:
            children.append(Child(node.name, step))
    return children


def is_named(children: list[Child]) -> bool:
    return any(c.key is not None for c in children)


def keyed(children: list[Child]) -> list[tuple[str, Child]]:
    """Keys of a named sequence: names, and positions for the others."""
    return [(c.key or str(i), c) for i, c in enumerate(children)]


def wiring(graph: Graph) -> list[tuple[str, tuple[str, ...], str | None, bool]]:
    """For each block: (name, the values it reads, a join mode or None, whether
    only training-only outputs need it)."""
    reads = block_reads(graph.blocks)
    needed = reached(reads, [o.name for o in graph.outputs if not o.training_only])
    return [
        (b.name, reads[b.name], _join_mode(b.body[0]), b.name not in needed) for b in graph.blocks
    ]


def _join_mode(first: Node) -> str | None:
    return first.mode if isinstance(first, JoinNode) else None
