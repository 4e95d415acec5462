"""``--sync-bn``: BatchNorm over the whole global batch in multi-process runs.

torch's ``nn.SyncBatchNorm`` runs only on GPUs; this one also runs on CPU
processes over gloo. In training mode with several processes, each
``BatchNorm2d`` sums its per-channel sums, sums of squares and counts over all
processes (a differentiable all-reduce, so gradients flow through the shared
statistics as in one process), normalizes with the global mean and variance
and updates its running statistics as one process would. Anywhere else
(evaluation, one process) it is the plain ``BatchNorm2d`` it replaced. The
``state_dict`` keys do not change.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover every process's batch."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        values = x.float()
        local = torch.cat(
            [
                values.sum((0, 2, 3)),
                (values * values).sum((0, 2, 3)),
                values.new_tensor([values.numel() / channels]),
            ]
        )
        total = all_reduce(local)
        count = total[-1]
        mean = total[:channels] / count
        var = (total[channels : 2 * channels] / count - mean * mean).clamp_min(0)
        self._update_running(mean.detach(), var.detach(), count.detach())
        shape = (1, channels, 1, 1)
        y = (values - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        if not self.track_running_stats or self.running_mean is None:
            return
        self.num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # a cumulative average, as BatchNorm2d
            momentum = 1.0 / float(self.num_batches_tracked)
        unbiased = var * count / (count - 1).clamp_min(1)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)


def convert_sync_bn(model: nn.Module) -> int:
    """Replace every ``BatchNorm2d`` of ``model`` (in place, same attribute,
    same state); returns how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                sync = SyncBatchNorm2d(
                    child.num_features,
                    child.eps,
                    child.momentum,
                    child.affine,
                    child.track_running_stats,
                    device=next(child.buffers(), torch.empty(0)).device,
                )
                sync.load_state_dict(child.state_dict())
                sync.train(child.training)
                setattr(parent, name, sync)
                replaced += 1
    return replaced


__all__ = ["SyncBatchNorm2d", "convert_sync_bn"]
