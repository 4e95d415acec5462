"""Rich renderings of reports for the command line."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from archcompile.compare import BlockChange
from archcompile.shapes import ShapeReport, format_shape


def shapes_table(report: ShapeReport, spec: str, batch: int, depth: int) -> Table:
    table = Table(
        title=f"{report.name} ({spec}), input {format_shape(report.input, batch)}",
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
            name = "  " * (level - 1) + relative
            style = "bold" if level == 1 else None
            table.add_row(
                Text(name, style=style),
                record.kind,
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
        console.print(Text(line, style=style))


def block_changes_table(changes: list[BlockChange]) -> Table:
    table = Table(title="Blocks that changed", title_justify="left")
    for column in ("Block", "Shape before", "Shape after", "Params before", "Params after"):
        table.add_column(column, justify="right" if "Params" in column else "left")
    for change in changes:
        before = change.before or (None, None)
        after = change.after or (None, None)
        table.add_row(
            change.name,
            format_shape(before[0]) if before[0] is not None else "-",
            format_shape(after[0]) if after[0] is not None else "-",
            f"{before[1]:,}" if before[1] is not None else "-",
            f"{after[1]:,}" if after[1] is not None else "-",
        )
    return table
