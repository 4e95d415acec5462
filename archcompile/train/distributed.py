"""PyTorch's own distributed engine, as ``torchrun`` sets it up.

Under ``torchrun --nproc-per-node N -m archcompile train ...`` each process
finds ``RANK``/``WORLD_SIZE`` in its environment, joins a process group (gloo
on CPU, nccl on GPU) and wraps the model in ``DistributedDataParallel``.
Without those variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @classmethod
    def from_environment(cls) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
            return cls(dist.get_rank(), dist.get_world_size(), owns_group=True)
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        return DistributedDataParallel(model) if self.world > 1 else model

    def combine(self, values: list[float]) -> list[float]:
        """Sum ``values`` over all processes (one small all-reduce per step)."""
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
