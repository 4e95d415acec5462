"""Small pieces of the training loop: Ctrl-C handling, metrics lines, warnings
and the one-line reports of a model that fails or starts from other weights."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from rich.console import Console

from archcompile import jsonsafe
from archcompile.errors import Diagnostic, TrainingError, clip, shown


class Stop:
    """Ctrl-C asks to stop after the current step (a second Ctrl-C stops at once)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Self:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def start_from(model, path: Path, spec, console: Console | None) -> None:
    """Start from the weights of ``path``; say which head was re-initialized."""
    from archcompile.weights import head_sizes
    from archcompile.weights import init_from as load_into

    fresh = load_into(model, path, head_sizes(spec))
    if console is None:
        return
    loaded = len(model.state_dict()) - len(fresh)
    console.print(f"initialized from {path}: {loaded} tensors loaded", markup=False)
    if fresh:
        shapes = ", ".join(f"{k} {list(model.state_dict()[k].shape)}" for k in fresh)
        console.print(f"re-initialized for the new number of classes: {shapes}", markup=False)


def model_failure(spec, exc: Exception, step: int, batch: int) -> TrainingError:
    """torch refused to run the model on a batch (BatchNorm over a single value
    per channel, too little memory): one located line instead of a traceback."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TrainingError(
        Diagnostic(
            f"the model fails on a batch of {batch} at step {step}: {clip(first)}",
            file=spec.display,
            hint="BatchNorm needs more than one value per channel: use a larger --batch-size "
            "or input; with too little memory, a smaller one",
        )
    )


def append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(jsonsafe.dumps(record) + "\n")


def append_if(condition: bool, path: Path, record: dict) -> None:
    if condition:
        append(path, record)


def warner(console: Console | None) -> Callable[[str], None]:
    def warn(message: str) -> None:
        if console is not None:
            console.print(shown(message), markup=False, highlight=False)

    return warn
