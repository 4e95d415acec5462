"""Generated source for the ``fuse_1x1`` pass (``archc build --optimize``).

In the optimized source, a composite class whose branches open with 1x1
convs of the same input calls them through ``fused_1x1`` (written into the
file, torch only) instead of branch by branch. The attributes, and so the
``state_dict``, are those of the plain source; only ``forward`` differs. The
live module does the same with :mod:`archcompile.passes.fuse_siblings`.
"""

from __future__ import annotations

from typing import Any

from archcompile.ir import LayerNode

#: the helper function the optimized source calls (ruff-clean at 88 columns)
FUSED_1X1 = '''def fused_1x1(x: Tensor, branches: list[nn.Module]) -> list[Tensor]:
    """Runs the 1x1 convs that open ``branches`` on ``x`` as one conv (archc build
    --optimize); each branch then goes on with its channels of the output.
    """
    convs = [b[0] if isinstance(b, nn.Sequential) else b for b in branches]
    biases = [c.bias for c in convs]
    bias = None if biases[0] is None else torch.cat(biases)
    y = nn.functional.conv2d(x, torch.cat([c.weight for c in convs]), bias)
    outputs, start = [], 0
    for branch, conv in zip(branches, convs):
        part = y.narrow(1, start, conv.out_channels)
        start += conv.out_channels
        rest = list(branch)[1:] if isinstance(branch, nn.Sequential) else []
        if rest and torch.is_grad_enabled():
            part = part.clone()  # autograd forbids in-place ops on views of one output
        for layer in rest:
            part = layer(part)
        outputs.append(part)
    return outputs
'''


def _opening_conv(branch: str, node: Any, child: Any) -> tuple[Any, Any] | None:
    """(input channels, bias) of the plain 1x1 conv a branch opens with, or None."""
    first = child.children[0] if child.children else None
    calls = (first.sym_calls or first.calls) if first is not None else ()
    if not calls or not isinstance(first.node, LayerNode):
        return None
    if first.node.name and branch not in node.singles:
        return None  # a named layer is its own child: [0] would not be the conv
    conv = calls[0]
    kwargs = dict(conv.kwargs)
    if conv.ctor != "Conv2d" or set(kwargs) - {"kernel_size", "bias"}:
        return None
    if kwargs["kernel_size"] not in (1, (1, 1)):
        return None
    return (str(conv.args[0]), kwargs.get("bias", True))


def fusable_branches(node: Any, step: Any) -> list[str]:
    """The branches of a concat/add node whose opening 1x1 convs can run as
    one: the largest group with the same input channels and bias setting."""
    groups: dict[tuple[Any, Any], list[str]] = {}
    for child in step.children:
        key = _opening_conv(child.branch, node, child)
        if key is not None:
            groups.setdefault(key, []).append(child.branch)
    best = max(groups.values(), key=len, default=[])
    return best if len(best) > 1 else []
