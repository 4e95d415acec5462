"""How IR bodies map onto module attributes; shared by both backends.

The live builder and the code generator must produce modules with identical
``state_dict`` keys so that weights move between them. Both therefore take
their structure from here:

* a block is an ``nn.Sequential`` of the modules its layers lower to;
* a defined composite block is a class whose attributes are its *members*:
  the branches of a ``concat``/``add`` by their names (identity branches have
  no attribute), other layers by their kind (``conv``, or ``conv1``,
  ``conv2``... when there are several);
* an activation given as a conv's or linear's ``activation:`` runs in place
  (its input is the fresh output of that layer); a standalone activation layer
  never does, because its input may be shared with another branch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from archcompile.ir import BranchNode, CallNode, LayerNode, Node

#: activations that support ``inplace=True`` in torch
INPLACE_ACTIVATIONS = frozenset({"relu", "leaky_relu", "silu"})


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
    counts = Counter(_base_name(n) for n in body if not isinstance(n, BranchNode))
    plain = {base for base, count in counts.items() if count == 1 and base not in branches}
    taken = branches | plain
    seen: Counter[str] = Counter()
    result = []
    for node in body:
        if isinstance(node, BranchNode):
            result.append(Member(node, None))
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


def branch_has_module(nodes: list[Node]) -> bool:
    """An empty branch is the identity and has no module."""
    return bool(nodes)
