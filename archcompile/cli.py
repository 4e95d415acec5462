"""The ``archc`` command line: a thin layer over the library's public functions.

Every user mistake is an :class:`~archcompile.errors.ArchcError`, printed as
``file:line:col: error: ...`` with exit code 1 (2 for usage errors); anything
else is an internal error, shown with a traceback only under ``--debug``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from archcompile.errors import ArchcError, UsageError
from archcompile.spec.loader import Spec, load_spec, parse_input, parse_overrides

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="archc: compile YAML network specs to PyTorch modules and source.",
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"debug": False}

SpecArg = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False, metavar="SPEC")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a spec parameter: --set num_classes=100.", show_default=False
    ),
]


def _load(path: Path, overrides: list[str] | None, input_shape: str | None = None) -> Spec:
    return load_spec(
        path,
        parse_overrides(overrides or []),
        parse_input(input_shape) if input_shape else None,
    )


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def shapes(
    spec: SpecArg,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Batch size shown (MACs scale with it).")
    ] = 1,
    input_shape: Annotated[
        str | None, typer.Option("--input", help="Override the input, CxHxW.")
    ] = None,
    overrides: SetOpt = None,
    depth: Annotated[
        int,
        typer.Option(
            "--depth", min=1, help="1: blocks; 2: layers in blocks; 3: inside composite blocks."
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Infer every tensor shape, parameter count and MAC count, without torch."""
    from archcompile import infer_shapes
    from archcompile.render import shapes_table

    loaded = _load(spec, overrides, input_shape)
    report = infer_shapes(loaded)
    if as_json:
        print(json.dumps(report.to_json(loaded.display, batch), indent=2))
        return
    out.print(shapes_table(report, loaded.display, batch, depth))


@app.command()
def build(
    spec: SpecArg,
    output: Annotated[
        str | None,
        typer.Option(
            "-o", "--output", help="Where to write; '-' for stdout. Default: build/<spec>.py."
        ),
    ] = None,
    overrides: SetOpt = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if the output is missing or stale."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite a file archc did not write or that was edited."),
    ] = False,
) -> None:
    """Generate standalone PyTorch source for SPEC."""
    from archcompile import generate_source
    from archcompile.backends.output import write_generated

    loaded = _load(spec, overrides)
    source = generate_source(loaded)
    if output == "-":
        sys.stdout.write(source)
        return
    path = Path(output) if output else Path("build") / f"{loaded.stem}.py"
    if check:
        try:
            current = path.read_text("utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            current = None
        if current == source:
            out.print(f"{path} is up to date with {loaded.display}")
            return
        state = "missing" if current is None else "stale"
        err.print(f"{path}: error: {state}; run: archc build {loaded.display} -o {path}")
        raise typer.Exit(1)
    write_generated(path, source, force)
    lines = source.count("\n")
    out.print(f"wrote {path} ({lines} lines): class {loaded.name} from {loaded.display}")


@app.command()
def diff(
    spec_a: Annotated[Path, typer.Argument(help="The first spec.", show_default=False)],
    spec_b: Annotated[Path, typer.Argument(help="The second spec.", show_default=False)],
) -> None:
    """Show how two specs differ: generated source, then block shapes and parameters.

    Exits 0 when they are equal and 1 when they differ, like diff(1).
    """
    from archcompile.compare import compare
    from archcompile.render import block_changes_table, print_diff

    a, b = _load(spec_a, None), _load(spec_b, None)
    result = compare(a, b)
    if result.equal:
        out.print(f"{a.display} and {b.display} generate the same source")
        return
    print_diff(out, result.source_diff)
    if result.blocks:
        out.print()
        out.print(block_changes_table(result.blocks))
    raise typer.Exit(1)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except ArchcError as exc:
        for diagnostic in exc.diagnostics:
            err.print(diagnostic.format(), markup=False)
        sys.exit(exc.exit_code if isinstance(exc, UsageError) else 1)
    except KeyboardInterrupt:
        err.print("archc: interrupted")
        sys.exit(130)
    except Exception as exc:
        if _state["debug"]:
            raise
        err.print(f"archc: internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print("  this is a bug in archc; run with --debug for the traceback", markup=False)
        sys.exit(3)


if __name__ == "__main__":  # pragma: no cover
    run()
