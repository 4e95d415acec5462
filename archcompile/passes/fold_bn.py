"""Pass ``fold_bn``: conv + BatchNorm folding for inference and export.

A ``Conv2d`` directly followed by a ``BatchNorm2d`` in an ``nn.Sequential``
(how both backends lay out ``conv: {norm: batch}``), or a conv whose output
only a BatchNorm reads in a composite block (torchvision's ``BasicConv2d``,
``specs/zoo/inception_v1.yaml``), computes, in eval mode,
one affine map: ``bn(conv(x)) == conv'(x)`` with

    scale = gamma / sqrt(running_var + eps)
    weight' = weight * scale    (per output channel)
    bias'   = (bias - running_mean) * scale + beta

The pass does not replace either module: it swaps their classes for
:class:`FoldedConv2d` and :class:`FoldedBatchNorm2d`, subclasses that keep
every parameter and buffer where it was. So the ``state_dict`` is untouched
(same keys, same tensors): a plain build's checkpoint loads into the folded
model and back, and training still updates the BatchNorm statistics. Only the
forward changes, and only while the BatchNorm is in eval mode: the conv runs
with the folded weights (computed once and cached until a parameter or buffer
changes in place, e.g. by ``load_state_dict`` or an optimizer step) and the
BatchNorm passes its input through. ONNX export traces the eval forward, so
the exported graph holds the folded convolution.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn


def _tensors(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> list[Tensor | None]:
    return [conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var]


def folded_weights(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The weight and bias of one conv equal to ``bn(conv(x))`` in eval mode."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    bias = -bn.running_mean if conv.bias is None else conv.bias - bn.running_mean
    bias = bias * scale
    if bn.bias is not None:
        bias = bias + bn.bias
    weight = conv.weight * scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype)
    return weight, bias.to(conv.weight.dtype)


class FoldedConv2d(nn.Conv2d):
    """A ``Conv2d`` that, while the ``BatchNorm2d`` after it is in eval mode,
    applies both at once with folded weights."""

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = self.effective_weights()
        return self._conv_forward(x, weight, bias)

    def effective_weights(self) -> tuple[Tensor, Tensor | None]:
        """What this conv and its BatchNorm compute together right now: the
        folded weights in eval mode, the conv's own in training mode."""
        bn = self._archc_bn[0]
        if bn.training:
            return self.weight, self.bias
        tensors = _tensors(self, bn)
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
            return folded_weights(self, bn)  # differentiable, not cached
        key = tuple((id(t), t._version, t.dtype) if t is not None else None for t in tensors)
        cached = self.__dict__.get("_archc_folded")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, folded_weights(self, bn))
            self.__dict__["_archc_folded"] = cached
        return cached[1]


class FoldedBatchNorm2d(nn.BatchNorm2d):
    """A ``BatchNorm2d`` whose eval-mode work is done by the conv before it."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        return x


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.running_mean is not None
        and bn.num_features == conv.out_channels
    )


def _chain_pairs(block: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(conv, bn) members of a composite block (``basic_conv``: conv, bn, relu)
    where the BatchNorm reads the conv's output and nothing else does."""
    calls = getattr(block, "_calls", None)
    if not calls:
        return []
    reads = [source for source, _, _ in calls.values()]
    joins = [j for before in block._before.values() for j in before] + block._after
    reads += [r for _, _, joined, _ in joins for r in joined]
    reads.append(getattr(block, "_result", None))
    reads += [name for name, _ in getattr(block, "_outputs", [])]  # a model's outputs
    pairs = []
    for conv_name, (_, conv_out, _) in calls.items():
        readers = [n for n, (source, _, _) in calls.items() if source == conv_out]
        if len(readers) == 1 and reads.count(conv_out) == 1:
            pairs.append((block._modules[conv_name], block._modules[readers[0]]))
    return pairs


def _pairs(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    pairs = []
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            pairs += itertools.pairwise(list(module))
        else:
            pairs += _chain_pairs(module)
    return pairs


def fold_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d into the Conv2d it directly follows (in eval mode);
    in place. Returns ``model``; without conv + BatchNorm pairs it is unchanged.

    Pairs are found in ``nn.Sequential`` containers (both backends) and in
    archc's composite blocks, whose plan says which member reads which.
    """
    for conv, bn in _pairs(model):
        if _foldable(conv, bn):
            conv.__class__ = FoldedConv2d
            bn.__class__ = FoldedBatchNorm2d
            object.__setattr__(conv, "_archc_bn", (bn,))  # not a child: no state_dict key
    return model


def count_folded(model: nn.Module) -> int:
    """How many convs the pass has folded a BatchNorm into."""
    return sum(isinstance(m, FoldedConv2d) for m in model.modules())
