"""Optimizing passes over a built model: ``archc build/train/eval/export
--optimize``, ``archcompile.build(spec, optimize=True)``.

Each pass is a function ``pass(model) -> model`` that changes a live module in
place and keeps two promises, which ``tests/test_passes.py`` checks on every
spec where the pass applies:

- **meaning**: eval-mode outputs equal the plain build's within float
  tolerance (bfloat16 rounding for ``bf16``);
- **state**: the ``state_dict`` keeps its keys, shapes and dtypes, so a plain
  build's checkpoint loads into the optimized model and the optimized model's
  back into a plain one, strictly.

=================  ===========================================================
``fold_bn``        conv + BatchNorm folded into one conv in eval mode
                   (:mod:`~archcompile.passes.fold_bn`)
``fuse_1x1``       sibling 1x1 convs of one input run as one conv
                   (:mod:`~archcompile.passes.fuse_siblings`)
``channels_last``  parameters and inputs in channels_last, once
                   (:mod:`~archcompile.passes.precision`)
``bf16``           bfloat16 autocast around the whole forward, float32
                   outputs (:mod:`~archcompile.passes.precision`)
=================  ===========================================================

:data:`DEFAULT` is the set ``--optimize`` applies: the passes ``make bench``
measured faster on the project's machine (see docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from archcompile.errors import Diagnostic, UsageError
from archcompile.passes.fold_bn import fold_bn
from archcompile.passes.fuse_siblings import fuse_1x1
from archcompile.passes.precision import bf16, bf16_supported, channels_last

#: every pass, in the order they are applied (folding before fusion, so the
#: fused conv uses the folded weights)
PASSES: dict[str, Callable[[nn.Module], nn.Module]] = {
    "fold_bn": fold_bn,
    "fuse_1x1": fuse_1x1,
    "channels_last": channels_last,
    "bf16": bf16,
}


def default_passes() -> tuple[str, ...]:
    """The passes ``--optimize`` applies on this machine."""
    chosen = ["fold_bn", "fuse_1x1", "channels_last"]
    if bf16_supported():
        chosen.append("bf16")
    return tuple(chosen)


def select(optimize: bool | str | Iterable[str] | None) -> tuple[str, ...]:
    """The passes named by ``optimize``: ``True`` for the default set, a
    comma-separated string or an iterable of names, ``False``/``None`` for none."""
    if optimize is None or optimize is False:
        return ()
    if optimize is True:
        return default_passes()
    names = optimize.split(",") if isinstance(optimize, str) else list(optimize)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise UsageError(
            Diagnostic(
                f"unknown optimization pass {unknown[0]!r}",
                hint=f"choose from: {', '.join(PASSES)}",
            )
        )
    return tuple(n for n in PASSES if n in names)


def optimize(model: nn.Module, passes: bool | str | Iterable[str] | None = True) -> nn.Module:
    """Apply the selected passes to ``model`` in place; returns it."""
    for name in select(passes):
        model = PASSES[name](model)
    return model


__all__ = ["PASSES", "default_passes", "optimize", "select"]
