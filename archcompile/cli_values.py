"""Checks of command-line values at the edge, before any work: each failure is
a typer usage error (one line, exit 2) naming the option."""

from __future__ import annotations

import math
from enum import Enum

import typer

#: torch.manual_seed takes a 64-bit unsigned seed
MAX_SEED = 2**64 - 1


def finite_positive(value: float) -> float:
    """A number that is finite and greater than 0 (a learning rate)."""
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"{value} is not a finite number greater than 0")
    return value


def finite_non_negative(value: float | None) -> float | None:
    """None, or a finite number of at least 0 (a weight decay)."""
    if value is not None and (not math.isfinite(value) or value < 0):
        raise typer.BadParameter(f"{value} is not a finite number of at least 0")
    return value


def fraction(value: float) -> float:
    """A finite number in [0, 1) (label smoothing)."""
    if not math.isfinite(value) or not 0 <= value < 1:
        raise typer.BadParameter(f"{value} is not a number in [0, 1)")
    return value


def optional_fraction(value: float | None) -> float | None:
    """None, or a finite number in (0, 1) (the decay of --ema)."""
    if value is not None and (not math.isfinite(value) or not 0 < value < 1):
        raise typer.BadParameter(f"{value} is not a number in (0, 1)")
    return value


class Optimizer(str, Enum):
    """``--optimizer``: a fixed choice, so ``--help`` lists it and typer
    refuses anything else as a usage error."""

    sgd = "sgd"
    sgd_momentum = "sgd-momentum"
    adamw = "adamw"


class Schedule(str, Enum):
    """``--schedule``."""

    constant = "constant"
    cosine = "cosine"
    onecycle = "onecycle"


class Precision(str, Enum):
    """``--precision``."""

    fp32 = "fp32"
    bf16 = "bf16"


class Runtime(str, Enum):
    """``archc eval --runtime``."""

    torch = "torch"
    generated = "generated"
    onnxruntime = "onnxruntime"


class ExportFormat(str, Enum):
    """``archc export --format``."""

    onnx = "onnx"
    torchscript = "torchscript"


class ExportSource(str, Enum):
    """``archc export --source``."""

    live = "live"
    generated = "generated"
