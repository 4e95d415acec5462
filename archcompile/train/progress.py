"""What ``archc train`` shows while it runs: a rich progress bar with loss,
accuracy, images/s and ETA, one line per evaluation, and the run's set-up."""

from __future__ import annotations

from typing import Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from archcompile.errors import shown


class TrainingProgress:
    def __init__(
        self,
        console: Console | None,
        spec: Any,
        report: Any,
        config: Any,
        total: int,
        steps_per_epoch: int,
        train_images: int,
    ) -> None:
        self.console = console
        self.steps_per_epoch = steps_per_epoch
        self.total = total
        self.bar: Progress | None = None
        self.task: Any = None
        # without a terminal (a log file, CI) a bar shows nothing until the end:
        # print a plain line every 5% of the run instead
        self.every = max(1, total // 20)
        self.header = (
            f"training {shown(spec.name)} ({shown(spec.display)}): {report.total_params:,} parameters, "
            f"{report.macs_per_image:,} MACs per image\n"
            f"  {train_images:,} training images at {'x'.join(map(str, spec.graph.input))}, "
            f"batch {config.batch_size}, {total:,} steps ({total / steps_per_epoch:.2f} epochs), "
            f"{config.optimizer} lr {config.lr} {config.schedule}, {config.precision}"
            f"{', channels_last' if config.channels_last else ''}"
        )

    def __enter__(self) -> Self:
        if self.console is None:
            return self
        self.console.print(self.header, highlight=False, markup=False)
        if not self.console.is_terminal:
            return self
        self.bar = Progress(
            TextColumn("[bold]step"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[speed]} img/s"
            ),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=self.total, loss="-", acc="-", speed="-")
        return self

    def advance(self, step: int, loss: float, accuracy: float, speed: float) -> None:
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=step,
                loss=f"{loss:.4f}",
                acc=f"{accuracy:.3f}",
                speed=f"{speed:.0f}",
            )
        elif self.console is not None and (step % self.every == 0 or step == self.total):
            self.console.print(
                f"  step {step:,}/{self.total:,}: loss {loss:.4f}, batch accuracy {accuracy:.3f}, "
                f"{speed:.0f} img/s",
                highlight=False,
            )

    def evaluated(self, step: int, evaluation: Any) -> None:
        if self.console is None:
            return
        epoch = step / self.steps_per_epoch
        (self.bar.console if self.bar else self.console).print(
            f"  step {step:,} (epoch {epoch:.2f}): test loss {evaluation.loss:.4f}, "
            f"accuracy {evaluation.accuracy:.2%} on {evaluation.count:,} images",
            highlight=False,
        )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
