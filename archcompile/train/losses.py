"""The training loss of a network with one output or several.

A spec's ``outputs:`` may name several blocks; the model then returns a named
tuple (in training mode) and each output's cross-entropy counts with its
``loss_weight`` (GoogLeNet's auxiliary classifiers: 0.3). Accuracy and
evaluation use the main output: the first that is not training-only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from archcompile.ir import Output


def check_class_count(spec: Any, classes: int, data: str = "Fashion-MNIST") -> None:
    """Refuse a spec whose main output is not ``classes`` scores per image, as
    one located line (training and evaluation both need it)."""
    from archcompile.errors import Diagnostic, TrainingError

    main = next(o.name for o in spec.graph.outputs if not o.training_only)
    shape = spec.tree().block(main).shape
    if shape != (classes,):
        raise TrainingError(
            Diagnostic(
                f"{spec.display} outputs [N, {', '.join(map(str, shape))}]; "
                f"{data} needs [N, {classes}] class scores",
                hint=f"end the spec with a linear layer of {classes} outputs "
                f"(--set num_classes={classes})",
            )
        )


def main_output(result: Any, outputs: tuple[Output, ...]) -> Tensor:
    """The main output's tensor from whatever the model returned."""
    if isinstance(result, Tensor):
        return result
    main = next(o.name for o in outputs if not o.training_only)
    return getattr(result, main)


def output_loss(
    result: Any, y: Tensor, outputs: tuple[Output, ...], label_smoothing: float = 0.0
) -> tuple[Tensor, Tensor]:
    """The weighted sum of every returned output's loss, and the main logits."""
    main = main_output(result, outputs)
    if isinstance(result, Tensor):
        return F.cross_entropy(main.float(), y, label_smoothing=label_smoothing), main
    total = torch.zeros((), device=main.device)
    for output in outputs:
        value = getattr(result, output.name)
        if value is not None and output.loss_weight:
            loss = F.cross_entropy(value.float(), y, label_smoothing=label_smoothing)
            total = total + output.loss_weight * loss
    return total, main
