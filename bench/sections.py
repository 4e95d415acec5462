"""The measurements of ``make bench``, one function per section of the table.

Every function takes the :class:`~bench.run.Config` and returns table rows;
the variants of a section are interleaved (see :mod:`bench.timing`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import archcompile
from archcompile.backends.codegen import generate
from archcompile.limits import DEFAULT_LIMITS
from archcompile.spec.loader import load_spec_text
from bench import googlenet_ref
from bench.timing import Row, interleave, rows_against

ROOT = Path(__file__).resolve().parent.parent
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
GOOGLENET_BN = ROOT / "specs" / "googlenet_bn.yaml"
CL = torch.channels_last


# -- whole processes ------------------------------------------------------------------
def _process(argv: list[str], rss: list[float]) -> None:
    """Run ``argv`` to the end (output discarded); its peak RSS (MiB) into ``rss``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {child.returncode}")
    rss.append(usage.ru_maxrss / 1024)


def cli_vs_torchinfo(config) -> list[Row]:
    """``archc shapes`` and ``archc build`` against a torchinfo summary of the same
    network (the hand-written GoogLeNet), each a whole Python process."""
    python = sys.executable
    out = Path(tempfile.mkdtemp()) / "googlenet.py"
    archc = [python, "-m", "archcompile.cli"]
    commands = {
        "archc shapes": [*archc, "shapes", str(GOOGLENET)],
        "archc build": [*archc, "build", str(GOOGLENET), "-o", str(out), "--force"],
    }
    if importlib.util.find_spec("torchinfo") is None:
        return [
            _missing("torchinfo is not installed (pip install torchinfo)", name)
            for name in commands
        ]
    summary = (
        "import torchinfo; from bench.googlenet_ref import GoogLeNet; "
        "torchinfo.summary(GoogLeNet(), input_size=(1, 1, 96, 96))"
    )
    commands["torchinfo summary"] = [python, "-c", summary]
    rss: dict[str, list[float]] = {name: [] for name in commands}
    calls = {name: (lambda n=name: _process(commands[n], rss[n])) for name in commands}
    times = interleave(calls, config.process_rounds, warmup=1)
    peak = {name: f"peak RSS {sorted(v)[len(v) // 2]:.0f} MiB" for name, v in rss.items()}
    notes = {n: f"{peak[n]} vs {peak['torchinfo summary']}" for n in commands}
    return rows_against("whole process", times, "torchinfo summary", notes=notes)


def _missing(note: str, name: str) -> Row:
    nan = float("nan")
    return Row("whole process", name, "torchinfo summary", "s", nan, nan, nan, nan, nan, 0, note)


# -- compile time as the spec grows ------------------------------------------------------
def wide_spec(layers: int) -> str:
    """A spec of ``layers`` distinct 1x1 convs (widths vary), 100 per block."""
    lines = ["archc: 1", f"name: Grow{layers}", "input: [8, 4, 4]", "blocks:"]
    for index in range(layers):
        if index % 100 == 0:
            lines.append(f"  b{index // 100}:")
        lines.append(f"    - conv: {{out: {8 + (index * 7) % 57}, kernel: 1}}")
    return "\n".join(lines) + "\n"


BIG = dataclasses.replace(
    DEFAULT_LIMITS,
    max_file_bytes=1 << 26,
    max_yaml_events=10**7,
    max_nodes=10**7,
    max_layers=10**6,
)


def _compile(text: str) -> None:
    spec = load_spec_text(text, limits=BIG)
    spec.tree()
    generate(spec)


def compile_growth(config) -> list[Row]:
    """Load + annotate + generate source for specs of 10 ... 10,000 layers."""
    texts = {f"{n:,} layers": wide_spec(n) for n in config.sizes}
    if len(texts) < 2:
        return []
    calls = {name: (lambda t=text: _compile(t)) for name, text in texts.items()}
    times = interleave(calls, config.compile_rounds, warmup=1)
    sizes = dict(zip(texts, config.sizes, strict=True))
    per_layer = {name: [t / sizes[name] for t in values] for name, values in times.items()}
    base = next(iter(texts))
    rows = rows_against("compile time per layer", per_layer, base, unit="ms/layer")
    for row in rows:  # show ms per layer; speed-up 1.00x = linear growth
        row.value, row.base = row.value * 1000, row.base * 1000
        row.note = f"{row.value * sizes[row.variant] / 1000:.2f} s in all; 1.00x = linear"
    return rows


# -- GoogLeNet steps ---------------------------------------------------------------------
def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        model.train()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def _eval_step(model: nn.Module, x: torch.Tensor):
    def step() -> None:
        model.eval()
        with torch.inference_mode():
            model(x)

    return step


def _batch(config, spec_path=None):
    shape = archcompile.load(spec_path or GOOGLENET).graph.input
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(config.batch, *shape, generator=generator)
    return x, torch.randint(0, 10, (config.batch,), generator=generator)


def _generated(spec_path, optimize=None) -> nn.Module:
    import types

    source = archcompile.generate_source(spec_path, optimize=optimize)
    module = types.ModuleType(f"bench_generated_{len(sys.modules)}")
    exec(compile(source, module.__name__, "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    return getattr(module, archcompile.load(spec_path).graph.name)()


def versus_hand_written(config) -> list[Row]:
    """archc's live module and generated source against the hand-written
    GoogLeNet; all channels_last float32, batch ``config.batch``."""
    torch.manual_seed(0)
    models = {
        "hand-written": googlenet_ref.GoogLeNet(),
        "archc live": archcompile.build(GOOGLENET),
        "archc generated": _generated(GOOGLENET),
        "archc live --optimize": archcompile.build(GOOGLENET, optimize=True),
    }
    x, y = _batch(config)
    x = x.contiguous(memory_format=CL)
    models = {name: m.to(memory_format=CL) for name, m in models.items()}
    rows = []
    for mode in ("eval", "train"):
        steps = {
            name: _eval_step(m, x) if mode == "eval" else _train_step(m, x, y)
            for name, m in models.items()
        }
        times = interleave(steps, config.rounds)
        rows += rows_against(
            f"GoogLeNet {mode}, channels_last",
            times,
            "hand-written",
            per=config.batch,
            unit="img/s",
        )
    return rows


def passes_vs_plain(config) -> list[Row]:
    """Each optimization pass alone, and the default set, against the plain
    build (NCHW float32) of the spec it applies to."""
    plans = [
        (GOOGLENET, "eval", ["fuse_1x1", "channels_last", "bf16", True]),
        (GOOGLENET_BN, "eval", ["fold_bn", "fuse_1x1", True]),
        (GOOGLENET, "train", ["fuse_1x1", "channels_last", True]),
    ]
    rows = []
    for spec_path, mode, selections in plans:
        x, y = _batch(config, spec_path)
        torch.manual_seed(0)
        models = {"plain": archcompile.build(spec_path)}
        for chosen in selections:
            name = "--optimize" if chosen is True else chosen
            models[name] = archcompile.build(
                spec_path, optimize=chosen if chosen is True else [chosen]
            )
        steps = {
            n: _eval_step(m, x) if mode == "eval" else _train_step(m, x, y)
            for n, m in models.items()
        }
        times = interleave(steps, config.rounds)
        section = f"pass vs plain: {spec_path.stem} {mode}"
        rows += rows_against(section, times, "plain", per=config.batch, unit="img/s")
    return rows


def precision_and_layout(config) -> list[Row]:
    """Training throughput: float32/bfloat16 x NCHW/channels_last (the passes)."""
    x, y = _batch(config)
    variants = {
        "float32 NCHW": [],
        "float32 channels_last": ["channels_last"],
        "bfloat16 NCHW": ["bf16"],
        "bfloat16 channels_last": ["channels_last", "bf16"],
    }
    torch.manual_seed(0)
    steps = {
        name: _train_step(archcompile.build(GOOGLENET, optimize=passes or None), x, y)
        for name, passes in variants.items()
    }
    times = interleave(steps, config.rounds)
    from archcompile.passes.precision import bf16_supported

    note = "" if bf16_supported() else "no AVX512-BF16/AMX: bfloat16 emulated"
    notes = {n: note for n in variants if "bfloat16" in n}
    return rows_against(
        "GoogLeNet train", times, "float32 NCHW", per=config.batch, unit="img/s", notes=notes
    )


def onnxruntime_vs_eager(config) -> list[Row]:
    """Eval: eager torch (plain, and --optimize) against onnxruntime running the
    model exported with ``archc export --optimize`` (BatchNorm folded)."""
    import onnxruntime

    from archcompile.export import onnx_bytes

    rows = []
    for spec_path in (GOOGLENET, GOOGLENET_BN):
        spec = archcompile.load(spec_path)
        x, _ = _batch(config, spec_path)
        torch.manual_seed(0)
        plain = archcompile.build(spec)
        optimized = archcompile.build(spec, optimize=True).eval()
        optimized.load_state_dict(plain.state_dict())
        session = onnxruntime.InferenceSession(
            onnx_bytes(optimized, spec), providers=["CPUExecutionProvider"]
        )
        feed = {"input": x.numpy()}
        steps = {
            "eager plain": _eval_step(plain, x),
            "eager --optimize": _eval_step(optimized, x),
            "onnxruntime (exported --optimize)": lambda s=session, f=feed: s.run(None, f),
        }
        times = interleave(steps, config.rounds)
        rows += rows_against(
            f"eval {spec_path.stem}", times, "eager plain", per=config.batch, unit="img/s"
        )
    return rows


SECTIONS = {
    "cli": cli_vs_torchinfo,
    "compile": compile_growth,
    "googlenet": versus_hand_written,
    "passes": passes_vs_plain,
    "precision": precision_and_layout,
    "onnx": onnxruntime_vs_eager,
}


def timed(name: str, config) -> tuple[list[Row], float]:
    start = time.perf_counter()
    rows = SECTIONS[name](config)
    return rows, time.perf_counter() - start
