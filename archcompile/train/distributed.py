"""PyTorch's own distributed engine, as ``torchrun`` sets it up.

Under ``torchrun --nproc-per-node N -m archcompile train ...`` each process
finds ``RANK``/``WORLD_SIZE`` in its environment, joins a process group (gloo
on CPU, nccl on GPU) and wraps the model in ``DistributedDataParallel``.
Without those variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from archcompile.errors import UsageError, clipped_repr


def _int_variable(name: str, default: int, low: int, high: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise UsageError(
            f"environment variable {name}={clipped_repr(text)} must be an integer {bound}"
        )
    return value


def check_environment() -> int:
    """The world size torchrun's variables describe, checked before any use:
    ``WORLD_SIZE`` >= 1, ``0 <= RANK < WORLD_SIZE``, ``LOCAL_RANK`` >= 0, and
    ``MASTER_ADDR``/``MASTER_PORT`` present when there are several processes."""
    world = _int_variable("WORLD_SIZE", 1, 1, 1 << 20)
    _int_variable("RANK", 0, 0, world - 1)
    _int_variable("LOCAL_RANK", 0, 0, world - 1)
    if world > 1:
        missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(n)]
        if missing:
            raise UsageError(
                f"WORLD_SIZE={world} is set but {' and '.join(missing)} not: "
                "run under torchrun, or use --nproc N (or unset WORLD_SIZE)"
            )
        _int_variable("MASTER_PORT", 0, 1, 65535)
    return world


def _device() -> torch.device:
    """This process's device: its own GPU when there are GPUs, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    owns_group: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def from_environment(cls) -> Distributed:
        world = check_environment()
        device = _device()
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if world <= 1:
            return cls(device=device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            return cls(dist.get_rank(), dist.get_world_size(), owns_group=True, device=device)
        return cls(dist.get_rank(), dist.get_world_size(), device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def combine(self, values: list[float]) -> list[float]:
        """Sum ``values`` over all processes (one small all-reduce per step)."""
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
