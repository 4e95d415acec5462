"""Pass ``fuse_1x1``: horizontal fusion of sibling 1x1 convolutions.

In a composite block (an Inception), several branches open with a 1x1
convolution of the same input: branch1's conv and the reductions of branch2
and branch3. Three small matrix products over the same pixels become one
larger one: the pass runs a single ``conv2d`` whose weight is the branches'
weights stacked on the output channels, splits its output by channels
(``narrow``, no copy) and sends each part through the rest of its branch.

State: nothing moves. The branch convs stay where they were (same
``state_dict`` keys and tensors); the block's class is swapped for
:class:`FusedCompositeBlock`, which only reads them. In training the stacked
weight is rebuilt every step (``torch.cat``, so gradients reach each conv's
own parameters); in eval, without autograd, it is cached until a weight
changes. A conv that :mod:`~archcompile.passes.fold_bn` folded contributes
its folded weights in eval mode, so the two passes compose.

Eligible: children of one ``CompositeBlock`` that read the same value, each a
bare ``Conv2d`` or an ``nn.Sequential`` starting with one, with kernel 1,
stride 1, no padding, dilation 1, groups 1 and the same input channels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archcompile.backends.torch_build import CompositeBlock


def _first_conv(module: nn.Module) -> nn.Conv2d | None:
    first = module[0] if isinstance(module, nn.Sequential) and len(module) else module
    if not isinstance(first, nn.Conv2d) or first.padding_mode != "zeros":
        return None
    plain = (1, 1) == first.kernel_size == first.stride == first.dilation
    return first if plain and first.padding in ((0, 0), "valid") and first.groups == 1 else None


def _weights(conv: nn.Conv2d) -> tuple[Tensor, Tensor | None]:
    effective = getattr(conv, "effective_weights", None)
    return effective() if effective is not None else (conv.weight, conv.bias)


class FusedCompositeBlock(CompositeBlock):
    """A composite block whose sibling 1x1 convs run as one convolution."""

    _archc_groups: list[list[str]]

    def _group_outputs(self, group: list[str], x: Tensor) -> list[Tensor]:
        modules = [self._modules[name] for name in group]
        convs = [_first_conv(m) for m in modules]
        rests = [list(m)[1:] if isinstance(m, nn.Sequential) else [] for m in modules]
        weight, bias = self._stacked(convs)
        y = F.conv2d(x, weight, bias)
        if all(rest and type(rest[0]) is nn.ReLU for rest in rests):
            y = torch.relu_(y)  # the ReLU each branch opens with, once for all
            rests = [rest[1:] for rest in rests]
        outputs, start = [], 0
        for rest, conv in zip(rests, convs):
            part = y.narrow(1, start, conv.out_channels)
            start += conv.out_channels
            if rest and getattr(rest[0], "inplace", False) and torch.is_grad_enabled():
                part = part.clone()  # autograd forbids in-place ops on views of a shared output
            for layer in rest:
                part = layer(part)
            outputs.append(part)
        return outputs

    def _stacked(self, convs: list[nn.Conv2d]) -> tuple[Tensor, Tensor | None]:
        if torch.is_grad_enabled() and any(c.weight.requires_grad for c in convs):
            return _cat([_weights(c) for c in convs])
        key = tuple(_state_key(c) for c in convs)
        cache = self.__dict__.setdefault("_archc_stacked", {})
        hit = cache.get(id(convs[0]))
        if hit is None or hit[0] != key:
            with torch.no_grad():
                hit = cache[id(convs[0])] = (key, _cat([_weights(c) for c in convs]))
        return hit[1]

    def _run(self, x: Tensor) -> dict[str, Tensor]:
        values: dict[str, Tensor] = {"input": x}
        leaders = {group[0]: group for group in self._archc_groups}
        done: set[str] = set()
        for name, module in self.named_children():
            self._joins(values, self._before[name])
            source, target, only = self._calls[name]
            if name in leaders:
                group = leaders[name]
                for member, out in zip(group, self._group_outputs(group, values[source])):
                    values[self._calls[member][1]] = out
                done.update(group)
            elif name not in done and (self.training or not only):
                values[target] = module(values[source])
        self._joins(values, self._after)
        return values


def _state_key(conv: nn.Conv2d) -> tuple:
    """What the conv's effective weights depend on: its tensors (and its folded
    BatchNorm's, and that BatchNorm's mode), each with its in-place version."""
    tensors = [conv.weight, conv.bias]
    bn = getattr(conv, "_archc_bn", None)
    if bn is not None:
        b = bn[0]
        tensors += [b.weight, b.bias, b.running_mean, b.running_var, b.training]
    return tuple((id(t), t._version, t.dtype) if isinstance(t, Tensor) else t for t in tensors)


def _cat(pairs: list[tuple[Tensor, Tensor | None]]) -> tuple[Tensor, Tensor | None]:
    weight = torch.cat([w for w, _ in pairs])
    if all(b is None for _, b in pairs):
        return weight, None
    biases = [b if b is not None else w.new_zeros(w.shape[0]) for w, b in pairs]
    return weight, torch.cat(biases)


def sibling_groups(block: CompositeBlock) -> list[list[str]]:
    """Children of ``block`` that open with a fusable 1x1 conv of the same
    value, grouped by that value; only groups of two or more."""
    groups: dict[tuple, list[str]] = {}
    for name, module in block.named_children():
        source, _, only = block._calls[name]
        conv = _first_conv(module)
        if conv is not None and not only:
            key = (source, conv.in_channels, conv.weight.dtype, conv.bias is None)
            groups.setdefault(key, []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def fuse_1x1(model: nn.Module) -> nn.Module:
    """Fuse the sibling 1x1 convs of every composite block; in place.

    Returns ``model``. Works on archc's live modules (``CompositeBlock``);
    other modules are left as they are.
    """
    for block in model.modules():
        if type(block) is CompositeBlock:
            groups = sibling_groups(block)
            if groups:
                block.__class__ = FusedCompositeBlock
                block._archc_groups = groups
    return model


def count_fused(model: nn.Module) -> int:
    """How many convs run inside a fused group."""
    return sum(
        len(g)
        for m in model.modules()
        if isinstance(m, FusedCompositeBlock)
        for g in m._archc_groups
    )
