"""The ``archc`` command line: a thin layer over the library's public functions.

Every user mistake is an :class:`~archcompile.errors.ArchcError`, printed as
``file:line:col: error: ...`` with exit code 1 (2 for usage errors); anything
else is an internal error, shown with a traceback only under ``--debug``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

# typer vendors click (typer._click); its exceptions are how usage errors arrive
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer._click.exceptions import UsageError as ClickUsageError

from archcompile import cli_help, jsonsafe
from archcompile import cli_values as values
from archcompile.errors import ArchcError, UsageError, shown
from archcompile.spec.loader import Spec, load_spec, parse_input, parse_overrides
from archcompile.train import threads as thread_policy

cli_help.hide_flag_types()
app = typer.Typer(
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="archc: compile YAML network specs to PyTorch modules and source.",
)
# markup=False, emoji=False: a path such as "out[/bold].py" or spec text such
# as ":thumbs_up:" prints as written; user strings also go through shown()
out = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)
#: diagnostics printed at most; a broken file can hold thousands of mistakes
MAX_SHOWN = 50
_state: dict = {"debug": False, "allow_extends": ()}

SpecArg = Annotated[
    Path, typer.Argument(help="The spec file (YAML).", show_default=False, metavar="SPEC")
]
OptimizeOpt = Annotated[
    bool,
    typer.Option("--optimize", help="Apply the default optimizing passes (docs/performance.md)."),
]
PassesOpt = Annotated[
    str | None,
    typer.Option(
        "--passes",
        help="Comma-separated passes instead of the default set: fold_bn, fuse_1x1, "
        "channels_last, bf16.",
        show_default=False,
    ),
]


def _passes(optimize: bool, passes: str | None) -> tuple[str, ...]:
    """The passes --optimize / --passes select (none without either)."""
    if not optimize and passes is None:
        return ()
    from archcompile.passes import select

    return select(passes if passes is not None else True)


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
        allow_extends=_state["allow_extends"],
    )


def _print_version(value: bool) -> None:
    """``--version``: print and stop before any command runs."""
    if value:
        from archcompile import __version__

        out.print(f"archc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
    allow_extends: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-extends",
            help="Let `extends:` read specs in this folder too (repeatable); by default only "
            "the spec's own folder tree.",
            show_default=False,
            metavar="DIR",
        ),
    ] = None,
) -> None:
    _state["debug"] = debug
    _state["allow_extends"] = tuple(allow_extends or ())


@app.command(epilog="Example: archc shapes specs/googlenet.yaml --depth 2")
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
        print(jsonsafe.dumps(report.to_json(loaded.display, batch, depth), indent=2))
        return
    out.print(shapes_table(report, loaded.display, batch, depth))


@app.command(epilog="Example: archc build specs/googlenet.yaml -o build/googlenet.py")
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
    optimize: OptimizeOpt = False,
    passes: PassesOpt = None,
) -> None:
    """Generate standalone PyTorch source for SPEC.

    With --optimize, the source calls sibling 1x1 convs as one (fuse_1x1)."""
    from archcompile import generate_source
    from archcompile.backends.output import write_generated

    loaded = _load(spec, overrides)
    source = generate_source(loaded, optimize=_passes(optimize, passes))
    if output == "-":
        if check or force:
            raise UsageError("--check and --force need a file to compare or replace, not '-o -'")
        sys.stdout.write(source)
        return
    target = output or str(Path("build") / f"{_safe_stem(loaded)}.py")
    if check:
        _check_up_to_date(target, source, loaded, overrides)
        return
    write_generated(target, source, force)
    lines = source.count("\n")
    out.print(
        f"wrote {shown(target)} ({lines} lines): class {shown(loaded.name)} from {shown(loaded.display)}"
    )


def _check_up_to_date(target: str, source: str, loaded: Spec, overrides: list[str] | None) -> None:
    """``build --check``: exit 1 unless ``target`` holds exactly ``source``."""
    from archcompile.backends.output import current_text

    if current_text(Path(target)) == source:
        out.print(f"{shown(target)} is up to date with {shown(loaded.display)}")
        return
    state = "missing" if not os.path.lexists(target) else "stale"
    sets = "".join(f" --set {shlex.quote(o)}" for o in overrides or [])
    command = f"archc build {shlex.quote(loaded.display)}{sets} -o {shlex.quote(target)}"
    err.print(f"{shown(target)}: error: {state}; run: {shown(command)}")
    raise typer.Exit(1)


@app.command(epilog="Example: archc diff specs/googlenet.yaml specs/googlenet_bn.yaml")
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
        out.print(f"{shown(a.display)} and {shown(b.display)} generate the same source")
        return
    print_diff(out, result.source_diff)
    if result.blocks:
        out.print()
        out.print(block_changes_table(result.blocks))
    raise typer.Exit(1)


LimitTestOpt = Annotated[
    int | None, typer.Option(min=1, help="Use the first N test images.", show_default=False)
]
MaxParamsOpt = Annotated[int, typer.Option(min=1, help="Refuse to build larger models.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Threads (default: one per free core, re-checked while training; "
        "OMP_NUM_THREADS also fixes it).",
        show_default=False,
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder of the Fashion-MNIST IDX files.", show_default=False),
]
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help="fashion-mnist, or DIR of class folders of .png/.jpg images "
        "(or DIR/train and DIR/test).",
    ),
]
ValSplitOpt = Annotated[
    float | None,
    typer.Option(
        "--val-split",
        help="Share of each class in DIR held out for evaluation (seeded; train: 0.1, "
        "eval: what the run used).",
        show_default=False,
    ),
]


@app.command(
    context_settings={"allow_extra_args": False},
    epilog="Example: archc train specs/googlenet.yaml --epochs 2 --optimizer adamw --lr 1e-3",
)
def train(
    spec: SpecArg,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Epochs to train (default 1 unless --max-steps)."),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Steps to train, instead of --epochs.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Global batch size.")] = 64,
    lr: Annotated[
        float,
        typer.Option(
            callback=values.finite_positive, help="Learning rate (peak rate for cosine/onecycle)."
        ),
    ] = 0.1,
    optimizer: Annotated[values.Optimizer, typer.Option(help="The optimizer.")] = (
        values.Optimizer.sgd
    ),
    schedule: Annotated[values.Schedule, typer.Option(help="The learning-rate schedule.")] = (
        values.Schedule.constant
    ),
    weight_decay: Annotated[
        float | None,
        typer.Option(
            callback=values.finite_non_negative,
            help="Default: 0 (sgd), 5e-4 (sgd-momentum), 0.05 (adamw).",
        ),
    ] = None,
    warmup_steps: Annotated[
        int, typer.Option(min=0, help="Linear warm-up steps (cosine, constant; onecycle: rise).")
    ] = 0,
    label_smoothing: Annotated[
        float,
        typer.Option(callback=values.fraction, help="Label smoothing of the cross-entropy loss."),
    ] = 0.0,
    precision: Annotated[
        values.Precision, typer.Option(help="bf16: bfloat16 autocast on CPU.")
    ] = values.Precision.fp32,
    channels_last: Annotated[
        bool, typer.Option(help="channels_last memory format (faster on CPU).")
    ] = True,
    augment: Annotated[bool, typer.Option(help="Random horizontal flips.")] = False,
    random_erasing: Annotated[
        float,
        typer.Option(
            callback=values.fraction, help="Erase a random rectangle with this probability."
        ),
    ] = 0.0,
    ema: Annotated[
        float | None,
        typer.Option(
            callback=values.optional_fraction,
            help="Evaluate and save a moving average of the weights with this decay (e.g. 0.999).",
            show_default=False,
        ),
    ] = None,
    tta_flip: Annotated[
        bool, typer.Option("--tta-flip", help="Evaluate each image and its mirror image.")
    ] = False,
    sync_bn: Annotated[
        bool, typer.Option("--sync-bn", help="BatchNorm over the global batch (with --nproc).")
    ] = False,
    seed: Annotated[
        int,
        typer.Option(
            min=0, max=values.MAX_SEED, help="Seed of initialization, order and augmentation."
        ),
    ] = 0,
    limit_train: Annotated[
        int | None, typer.Option(min=1, help="Use the first N training images.")
    ] = None,
    limit_test: LimitTestOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default runs/<spec>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the checkpoint in --out.")
    ] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            "--init-from",
            help="Start from these weights (a run folder, e.g. from import-weights); "
            "a head sized for another num_classes is re-initialized.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Train into a folder archc did not create, or over a finished run."
        ),
    ] = False,
    overrides: SetOpt = None,
    data_dir: DataDirOpt = None,
    data: DataOpt = "fashion-mnist",
    val_split: ValSplitOpt = None,
    log_every: Annotated[int, typer.Option(min=1, help="Log a metrics line every N steps.")] = 1,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(min=1, help="Also checkpoint every N steps (always: each epoch, the end)."),
    ] = None,
    max_params: MaxParamsOpt = 2_000_000_000,
    nproc: Annotated[
        int,
        typer.Option(min=1, help="Processes: N > 1 relaunches this command under torchrun (DDP)."),
    ] = 1,
    threads: ThreadsOpt = None,
    optimize: OptimizeOpt = False,
    passes: PassesOpt = None,
) -> None:
    """Train SPEC on Fashion-MNIST (the tutorial's defaults: SGD, lr 0.1, batch 64)."""
    from pydantic import ValidationError

    from archcompile.train.data import DEFAULT_DATA_DIR
    from archcompile.train.trainer import TrainConfig

    if epochs is not None and max_steps is not None:
        raise UsageError("give --epochs or --max-steps, not both")
    if resume and init_from is not None:
        raise UsageError("give --resume or --init-from, not both")
    loaded = _load(spec, overrides)  # a broken spec: one report, before any relaunch
    if nproc > 1:
        _relaunch_under_torchrun(nproc)
    try:
        config = TrainConfig(
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer.value,
            schedule=schedule.value,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            label_smoothing=label_smoothing,
            precision=precision.value,
            channels_last=channels_last,
            augment=augment,
            random_erasing=random_erasing,
            ema=ema,
            tta_flip=tta_flip,
            sync_bn=sync_bn,
            seed=seed,
            limit_train=limit_train,
            limit_test=limit_test,
            data_dir=str(data_dir or DEFAULT_DATA_DIR),
            data=data,
            val_split=0.1 if val_split is None else val_split,
            log_every=log_every,
            checkpoint_every=checkpoint_every,
            max_params=max_params,
            optimize=list(_passes(optimize, passes)),
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(problems) from None
    from archcompile.render import training_summary
    from archcompile.train.threads import ThreadGovernor
    from archcompile.train.trainer import train as run_training

    result = run_training(
        loaded,
        config,
        out_dir or Path("runs") / _safe_stem(loaded),
        resume=resume,
        console=out,
        force=force,
        init_from=init_from,
        threads=ThreadGovernor.start(_fixed_threads(threads)),
    )
    out.print(training_summary(result))
    if result.interrupted:
        err.print(
            f"interrupted at step {result.steps}; the checkpoint is in {shown(result.out)}; "
            "continue with --resume"
        )
        raise typer.Exit(130)


def _safe_stem(spec: Spec) -> str:
    """The spec's file stem as a folder name: never ``.``, ``..`` or empty
    (``...yaml`` would otherwise train into the working directory)."""
    stem = spec.stem
    return stem if stem.strip(".") else "spec"


def _fixed_threads(threads: int | None) -> int | None:
    """``--threads N``, else a valid ``OMP_NUM_THREADS``, else None (automatic)."""
    if threads is not None:
        return threads
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _relaunch_under_torchrun(nproc: int) -> None:
    """Run this same command as ``torchrun --nproc-per-node N -m archcompile ...``."""
    from archcompile.train.launch import relaunch

    raise typer.Exit(relaunch(nproc, sys.argv[1:], _state["debug"]))


@app.command(
    "eval", epilog="Example: archc eval specs/googlenet.yaml runs/googlenet --plot confusion.png"
)
def evaluate_command(
    spec: SpecArg,
    checkpoint_path: Annotated[
        Path,
        typer.Argument(
            help="A training output folder or its checkpoint.json.", metavar="CHECKPOINT"
        ),
    ],
    data_dir: DataDirOpt = None,
    data: DataOpt = "fashion-mnist",
    val_split: ValSplitOpt = None,
    limit_test: LimitTestOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Evaluation batch size.")] = 256,
    overrides: SetOpt = None,
    plot: Annotated[
        str | None,
        typer.Option(help="Write the confusion matrix as a PNG here (in an existing folder)."),
    ] = None,
    allow_spec_change: Annotated[
        bool, typer.Option(help="Use weights of a different spec when their shapes fit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    max_params: MaxParamsOpt = 2_000_000_000,
    force: Annotated[
        bool, typer.Option("--force", help="Let --plot replace a file archc did not write.")
    ] = False,
    runtime: Annotated[
        values.Runtime,
        typer.Option(
            help="generated: the class archc build writes; onnxruntime: the model exported to ONNX."
        ),
    ] = values.Runtime.torch,
    spec_from_file: Annotated[
        bool,
        typer.Option(
            "--spec-from-file",
            help="Use SPEC (with --set) as given, not the resolved spec the run stored.",
        ),
    ] = False,
    tta_flip: Annotated[
        bool | None,
        typer.Option(
            "--tta-flip/--no-tta-flip",
            help="Score each image and its mirror image (default: as the run was trained).",
            show_default=False,
        ),
    ] = None,
    threads: ThreadsOpt = None,
    optimize: OptimizeOpt = False,
    passes: PassesOpt = None,
) -> None:
    """Evaluate a checkpoint on the Fashion-MNIST test set.

    A run trained with --set is evaluated with the spec it stored, unless
    --spec-from-file."""
    from archcompile.errors import CheckpointError
    from archcompile.render import evaluation_tables
    from archcompile.train import stored_spec
    from archcompile.train.data import DEFAULT_DATA_DIR
    from archcompile.train.runner import evaluate_checkpoint
    from archcompile.train.threads import ThreadGovernor

    ThreadGovernor.start(_fixed_threads(threads))
    plot_path = _plot_target(plot, force) if plot is not None else None
    loaded, note = stored_spec.choose(
        _load(spec, overrides), checkpoint_path, spec_from_file or allow_spec_change
    )
    if note is not None:
        err.print(shown(note))
    try:
        evaluation = evaluate_checkpoint(
            loaded,
            checkpoint_path,
            data_dir or DEFAULT_DATA_DIR,
            limit_test,
            batch_size,
            allow_spec_change,
            max_params,
            runtime.value,
            data,
            val_split,
            tta_flip,
            passes=_passes(optimize, passes),
        )
    except CheckpointError as exc:  # weights for other --set values: name them
        raise stored_spec.with_hint(exc, loaded, checkpoint_path) from None
    if plot_path is not None:
        from archcompile.train.plots import plot_confusion

        plot_confusion(evaluation, plot_path, f"{loaded.name} ({loaded.display})")
    if as_json:
        print(
            jsonsafe.dumps(
                {**evaluation.to_json(), "confusion": evaluation.confusion.tolist()}, indent=2
            )
        )
        return
    for table in evaluation_tables(evaluation):
        out.print(table)
    if plot_path is not None:
        out.print(f"wrote {shown(plot_path)}")


def _plot_target(plot: str, force: bool) -> Path:
    """Check ``--plot`` before the evaluation: a new or archc-written .png file."""
    from archcompile.files import check_output
    from archcompile.train.plots import recognize_png

    target = check_output(plot, force=force, recognize=recognize_png, what=".png file")
    if target.suffix.lower() != ".png":
        raise UsageError(f"--plot {plot}: the confusion matrix is written as a .png file")
    return target


def _safe_streams() -> None:
    """Characters stdout/stderr cannot encode (``café`` under ``LC_ALL=C``)
    are printed as escapes instead of crashing the printing."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a detached stream
                pass


def _usage_error(exc: ClickException) -> None:
    """A click/typer usage error as archc's one line (and a hint), exit 2."""
    command = getattr(getattr(exc, "ctx", None), "command_path", None) or "archc"
    message = exc.format_message().replace(": Value error, ", ": ")  # pydantic's prefix
    err.print(f"{shown(command)}: error: {shown(message)}")
    err.print(f"  hint: see {shown(command)} --help")
    sys.exit(2 if isinstance(exc, ClickUsageError) else exc.exit_code)


@app.command(epilog="Example: archc graph specs/googlenet.yaml -o googlenet.svg --depth 2")
def graph(
    spec: SpecArg,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="FILE.svg, .png or .dot; '-' prints DOT. Default: build/<spec>.svg.",
        ),
    ] = None,
    depth: Annotated[
        int,
        typer.Option(
            "--depth",
            min=1,
            help="1: a node per block; 2: blocks as clusters of layers; 3+: composites opened.",
        ),
    ] = 1,
    overrides: SetOpt = None,
    input_shape: Annotated[
        str | None, typer.Option("--input", help="Override the input, CxHxW.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file archc did not write.")
    ] = False,
) -> None:
    """Draw SPEC with Graphviz: nodes with parameter counts, edges with tensor shapes."""
    from archcompile.graphviz_render import graph_dot, output_format, render, write_graph

    fmt = output_format(Path(output)) if output and output != "-" else "svg"
    loaded = _load(spec, overrides, input_shape)
    dot = graph_dot(loaded.tree(), depth)
    if output == "-":
        sys.stdout.write(dot)
        return
    path = Path(output) if output else Path("build") / f"{loaded.stem}.svg"
    write_graph(path, render(dot, fmt), fmt, force)
    out.print(
        f"wrote {shown(path)}: {shown(loaded.name)} from {shown(loaded.display)}, depth {depth}"
    )


@app.command(epilog="Example: archc schema -o archc.schema.json")
def schema(
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the schema here instead of printing it."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file archc did not write.")
    ] = False,
) -> None:
    """Print the JSON Schema of the spec language, for editors (see docs/editor.md)."""
    from archcompile.spec.jsonschema import schema_text, write_schema

    if output is None:
        print(schema_text(), end="")
    else:
        out.print(f"wrote {shown(write_schema(output, force))}")


@app.command(
    "import-weights",
    epilog="Example: archc import-weights specs/googlenet.yaml googlenet.pt -o runs/pretrained",
)
def import_weights(
    spec: SpecArg,
    weights_file: Annotated[
        Path,
        typer.Argument(
            help="A state_dict: .safetensors, or .pt (read with weights_only=True).",
            metavar="FILE",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The run folder to write.", show_default=False)
    ],
    overrides: SetOpt = None,
    max_params: Annotated[int, typer.Option(help="Refuse to build larger models.")] = 2_000_000_000,
) -> None:
    """Map a state_dict onto SPEC's model (by name, else by order and shape) as a run folder.

    The folder is read by `archc eval SPEC RUN_DIR` and `archc train SPEC --init-from RUN_DIR`.
    """
    from archcompile.render import weight_map_table
    from archcompile.weights import import_weights as map_weights

    loaded = _load(spec, overrides)
    mapping = map_weights(loaded, weights_file, output, max_params)
    out.print(weight_map_table(mapping, str(weights_file), loaded.display))
    out.print(f"wrote {shown(output)}: {len(mapping.pairs)} tensors, matched by {mapping.method}")


@app.command(
    epilog="Example: archc export specs/googlenet.yaml --weights runs/googlenet -o googlenet.onnx"
)
def export(
    spec: SpecArg,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The file to write.", show_default=False)
    ],
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="A training run folder whose weights to export."),
    ] = None,
    fmt: Annotated[
        values.ExportFormat, typer.Option("--format", help="The file format.")
    ] = values.ExportFormat.onnx,
    source: Annotated[
        values.ExportSource,
        typer.Option("--source", help="live: the built module; generated: archc build's source."),
    ] = values.ExportSource.live,
    overrides: SetOpt = None,
    max_params: Annotated[int, typer.Option(help="Refuse to build larger models.")] = 2_000_000_000,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing file (archc does not mark models).")
    ] = False,
    optimize: OptimizeOpt = False,
    passes: PassesOpt = None,
) -> None:
    """Export SPEC as ONNX or TorchScript, checked against the torch module before writing."""
    from archcompile.export import export as export_model

    loaded = _load(spec, overrides)
    chosen = _passes(optimize, passes)
    result = export_model(
        loaded, output, fmt.value, weights, source.value, max_params, force, chosen
    )
    outputs = ", ".join(result.outputs)
    out.print(
        f"wrote {shown(result.path)} ({result.size:,} bytes, {result.format}, "
        f"outputs: {shown(outputs)}): "
        f"max abs difference {result.max_abs_diff:.2e} from the torch module",
        markup=False,
    )


def run() -> None:
    """Console-script entry point."""
    # OpenMP reads its wait policy once, when torch is imported: set it first
    thread_policy.prepare()
    _safe_streams()
    try:
        sys.exit(app(standalone_mode=False, prog_name="archc") or 0)
    except NoArgsIsHelpError as exc:
        err.print(exc.ctx.get_help() if exc.ctx else "archc: see archc --help")
        sys.exit(2)
    except ClickException as exc:
        _usage_error(exc)
    except typer.Abort:
        err.print("archc: interrupted")
        sys.exit(130)
    except ArchcError as exc:
        for diagnostic in exc.diagnostics[:MAX_SHOWN]:
            err.print(diagnostic.format())
        if len(exc.diagnostics) > MAX_SHOWN:
            err.print(f"archc: {len(exc.diagnostics) - MAX_SHOWN:,} more errors not shown")
        sys.exit(exc.exit_code if isinstance(exc, UsageError) else 1)
    except KeyboardInterrupt:
        err.print("archc: interrupted")
        sys.exit(130)
    except Exception as exc:
        if _state["debug"]:
            raise
        err.print(f"archc: internal error: {type(exc).__name__}: {shown(exc)}")
        err.print("  this is a bug in archc; run with --debug for the traceback")
        sys.exit(3)


if __name__ == "__main__":  # pragma: no cover
    run()
