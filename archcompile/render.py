"""Rich renderings of reports for the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from archcompile.errors import shown
from archcompile.shapes import format_shape
from archcompile.tree import ShapeReport

if TYPE_CHECKING:  # compare imports the code generator, which shapes does not need
    from archcompile.compare import BlockChange


def shapes_table(report: ShapeReport, spec: str, batch: int, depth: int) -> Table:
    table = Table(
        title=Text(
            f"{shown(report.name)} ({shown(spec)}), input {format_shape(report.input, batch)}"
        ),
        title_justify="left",
    )
    table.add_column("Block")
    table.add_column("Kind")
    table.add_column("Output shape", no_wrap=True)
    table.add_column("Params", justify="right")
    table.add_column("MACs", justify="right")
    for block in report.blocks:
        parents: list[str] = []
        for level, record in block.walk(depth):
            # show each name relative to its parent: block3, [0], branch2, [1]
            del parents[level - 1 :]
            parent = parents[-1] if parents else ""
            relative = (
                record.name[len(parent) :].lstrip(".")
                if record.name.startswith(parent)
                else record.name
            )
            parents.append(record.name)
            name = "  " * (level - 1) + shown(relative)
            style = "bold" if level == 1 else None
            table.add_row(
                Text(name, style=style),
                Text(shown(record.kind)),
                format_shape(record.shape, batch),
                f"{record.params:,}",
                f"{record.macs * batch:,}",
            )
    table.add_section()
    table.add_row(
        Text("total", style="bold"),
        "",
        "",
        f"{report.total_params:,}",
        f"{report.macs_per_image * batch:,}",
    )
    return table


def print_diff(console: Console, lines: list[str]) -> None:
    for line in lines:
        line = line.rstrip("\n")
        style = None
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        console.print(Text(shown(line), style=style))


def block_changes_table(changes: list[BlockChange]) -> Table:
    table = Table(title="Blocks that changed", title_justify="left")
    for column in ("Block", "Shape before", "Shape after", "Params before", "Params after"):
        table.add_column(column, justify="right" if "Params" in column else "left")
    for change in changes:
        before = change.before or (None, None)
        after = change.after or (None, None)
        table.add_row(
            Text(shown(change.name)),
            format_shape(before[0]) if before[0] is not None else "-",
            format_shape(after[0]) if after[0] is not None else "-",
            f"{before[1]:,}" if before[1] is not None else "-",
            f"{after[1]:,}" if after[1] is not None else "-",
        )
    return table


def training_summary(result) -> Table:
    table = Table(
        title=Text(f"Training summary ({shown(result.out)})"),
        title_justify="left",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row("steps", f"{result.steps:,} ({result.epochs:.2f} epochs)")
    table.add_row("wall time", f"{result.seconds:,.1f} s")
    table.add_row("throughput", f"{result.images_per_s:,.0f} images/s (training, with evaluations)")
    if result.final is not None:
        table.add_row("final test loss", f"{result.final.loss:.4f}")
        table.add_row(
            "final test accuracy", f"{result.final.accuracy:.2%} on {result.final.count:,} images"
        )
        table.add_row("best test accuracy", f"{result.best_accuracy:.2%}")
    table.add_row(
        "files",
        "metrics.jsonl, curves.png, LATEST, step-N/ (model.safetensors, "
        "optimizer.safetensors, checkpoint.json)",
    )
    if result.interrupted:
        table.add_row("state", "interrupted (checkpoint written)")
    return table


def evaluation_tables(evaluation) -> list[Table]:
    summary = Table(title="Test set", title_justify="left", show_header=False)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("images", f"{evaluation.count:,}")
    summary.add_row("loss", f"{evaluation.loss:.4f}")
    summary.add_row("accuracy", f"{evaluation.accuracy:.2%}")
    per_class = Table(title="Per class", title_justify="left")
    per_class.add_column("class")
    per_class.add_column("accuracy", justify="right")
    per_class.add_column("images", justify="right")
    totals = evaluation.confusion.sum(1).tolist()
    for name, accuracy, count in zip(evaluation.class_names, evaluation.per_class, totals):
        per_class.add_row(name, f"{accuracy:.2%}", f"{count:,}")
    confusion = Table(
        title="Confusion matrix (rows: true class, columns: predicted class)",
        title_justify="left",
    )
    # numbered columns keep the table within 80 columns; rows carry the names
    confusion.add_column("true class")
    for index in range(len(evaluation.class_names)):
        confusion.add_column(str(index), justify="right")
    for index, (name, row) in enumerate(zip(evaluation.class_names, evaluation.confusion.tolist())):
        confusion.add_row(f"{index} {name}", *(str(v) for v in row))
    return [summary, per_class, confusion]


def weight_map_table(mapping, file: str, spec: str) -> Table:
    """``archc import-weights``: which tensor of the file went where."""
    table = Table(
        title=f"{file} -> {spec}: {len(mapping.pairs)} tensors, matched by {mapping.method}",
        title_justify="left",
    )
    table.add_column("source key")
    table.add_column("model key")
    table.add_column("shape", no_wrap=True)
    for source, target, shape in mapping.pairs:
        shown = "x".join(map(str, shape)) or "scalar"
        table.add_row(source, "=" if source == target else target, shown)
    return table
