"""Passes ``channels_last`` and ``bf16``: memory format and precision, chosen
once for the whole model instead of at every call site.

Without them, every caller (the trainer, ``archc eval``, a user's loop) must
remember to convert the model and each batch to channels_last and to wrap
the forward in ``torch.autocast``. With them, the model carries the choice:

- ``channels_last`` converts the parameters once
  (``model.to(memory_format=torch.channels_last)``) and registers a forward
  pre-hook on the model that converts each 4-d input batch. oneDNN's
  convolutions on CPU run faster on NHWC data; the values are the same.
- ``bf16`` registers hooks that run the model's forward under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` and return float32
  outputs. Parameters and the ``state_dict`` stay float32. It is only worth
  it where the CPU computes bfloat16 natively (AVX512-BF16 or AMX, see
  :func:`bf16_supported`); elsewhere bfloat16 is emulated and slower, so the
  default set of passes includes it only on such CPUs. Outputs differ from
  float32 by bfloat16 rounding (about 1e-2 relative), not by meaning.

Neither pass touches the ``state_dict`` keys; tensors stay float32 (channels_last
only changes their strides), so checkpoints move both ways.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def _to_channels_last(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        a.contiguous(memory_format=torch.channels_last)
        if isinstance(a, Tensor) and a.dim() == 4
        else a
        for a in args
    )


def channels_last(model: nn.Module) -> nn.Module:
    """Parameters and every 4-d input in channels_last; in place, returns ``model``."""
    if getattr(model, "_archc_channels_last", False):
        return model
    model.to(memory_format=torch.channels_last)
    model.register_forward_pre_hook(_to_channels_last)
    model._archc_channels_last = True
    return model


class _Autocast:
    """Forward hooks that enter bfloat16 autocast before the model's forward
    and leave it after (also when the forward raises)."""

    def __init__(self) -> None:
        self.contexts: list[Any] = []

    def enter(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        context = torch.autocast("cpu", dtype=torch.bfloat16)
        context.__enter__()
        self.contexts.append(context)

    def leave(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if self.contexts:
            self.contexts.pop().__exit__(None, None, None)
        return _to_float(output)


def _to_float(output: Any) -> Any:
    if isinstance(output, Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, tuple) and hasattr(output, "_fields"):
        return type(output)(*(_to_float(o) if o is not None else None for o in output))
    if isinstance(output, (tuple, list)):
        return type(output)(_to_float(o) for o in output)
    return output


def bf16(model: nn.Module) -> nn.Module:
    """Run the model's forward under bfloat16 autocast, float32 outputs; in place."""
    if getattr(model, "_archc_bf16", False):
        return model
    hooks = _Autocast()
    model.register_forward_pre_hook(hooks.enter)
    model.register_forward_hook(hooks.leave, always_call=True)
    model._archc_bf16 = True
    return model
