"""How long archc takes, and how much memory, to refuse hostile specs.

    .venv/bin/python scripts/bench_attacks.py [--only NAME ...]

For each attack: the seconds the front end (load, validate, infer shapes,
generate source) takes in process, the peak of Python allocations meanwhile
(tracemalloc, in a second run), and the wall time and peak resident memory of
the whole ``archc shapes FILE`` command in a fresh process (interpreter start
included). Prints a Markdown table and the first line archc prints for each.
Figures depend on the machine and its load: they are indicative.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from attacks import HEADER, REFUSED

import archcompile
from archcompile.errors import ArchcError
from archcompile.limits import DEFAULT_LIMITS

MIB = 2**20


def _dense(items: int) -> str:
    return "[" + ", ".join(["1"] * items) + "]\n"


def _extras(folder: Path) -> dict[str, Path]:
    """Attacks that need several files or large content; name -> spec path."""
    specs: dict[str, Path] = {}

    def write(name: str, text: str) -> Path:
        path = folder / name
        path.write_text(text)
        return path

    huge = folder / "huge-50mb.yaml"
    with huge.open("wb") as handle:
        handle.write(b"archc: 1\n# " + b"x" * (50 * MIB) + b"\n")
    specs["50 MB file"] = huge
    specs["1 MiB of dense YAML (350,000 values)"] = write("dense.yaml", _dense(349_000))
    specs["120,000 values"] = write("values.yaml", _dense(120_000))
    near = DEFAULT_LIMITS.max_nodes - 100
    specs[f"{near:,} values (within the value limit: parsed in full)"] = write(
        "values-ok.yaml", HEADER + "description: " + _dense(near)[:-1] + "\nblocks: {b: [relu]}\n"
    )
    write("cycle-b.yaml", "extends: cycle-a.yaml\n")
    specs["extends cycle"] = write("cycle-a.yaml", "extends: cycle-b.yaml\n")
    specs["extends /dev/zero"] = write("zero.yaml", "extends: /dev/zero\n")
    for i in range(20):
        write(f"chain{i}.yaml", f"extends: chain{i + 1}.yaml\n")
    specs["extends chain of 21 files"] = folder / "chain0.yaml"
    write("base.yaml", HEADER + "blocks:\n  b: [relu]\n")
    wide = DEFAULT_LIMITS.max_nodes // 2 - 100
    specs[f"extends, a child with {wide:,} params (accepted)"] = write(
        "wide.yaml",
        "extends: base.yaml\nparams:\n" + "".join(f"  p{i}: {i}\n" for i in range(wide)),
    )
    specs["9,000 unknown layer kinds"] = write(
        "typos.yaml",
        HEADER + "blocks:\n  b:\n" + "".join(f"    - maxpol{i}\n" for i in range(9000)),
    )
    specs["9,999 layers (accepted: at the layer limit)"] = write(
        "layers.yaml", HEADER + "blocks:\n  b:\n    - repeat: {times: 9999, layers: [relu]}\n"
    )
    specs["4,999 uses of a composite block (accepted)"] = write(
        "calls.yaml",
        HEADER + "define:\n  unit:\n    params: [c]\n    layers: [{conv: {out: $c, kernel: 1}}]\n"
        "blocks:\n  b:\n    - repeat: {times: 4999, layers: [{unit: [4]}]}\n",
    )
    return specs


def front_end(path: Path) -> str:
    """What ``archc build`` does before writing; the first message on refusal."""
    try:
        spec = archcompile.load_spec(path)
        archcompile.infer_shapes(spec)
        archcompile.generate_source(spec)
    except ArchcError as exc:
        return exc.first.format().split("\n")[0]
    return "(accepted)"


def _timed(run: Callable[[], str]) -> tuple[str, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def _traced(run: Callable[[], str]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


#: runs a command and prints its peak RSS: measured from a small parent, since a
#: child's peak counts what it inherited when forked from this (larger) process
_MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _cli(path: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of ``archc shapes PATH`` in a new process."""
    start = time.perf_counter()
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "archcompile", "shapes", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=path.parent,
    )
    return time.perf_counter() - start, int(measured.stdout) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="names (or parts of names) to run")
    args = parser.parse_args()
    front_end(ROOT / "specs" / "googlenet.yaml")  # imports and caches, outside the figures
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        specs = {}
        for name, (text, _) in REFUSED.items():
            specs[name] = folder / f"{name}.yaml"
            specs[name].write_text(text)
        specs.update(_extras(folder))
        rows, messages = [], []
        for name, path in specs.items():
            if args.only and not any(part in name for part in args.only):
                continue
            message, seconds = _timed(lambda: front_end(path))  # noqa: B023 (called at once)
            peak = _traced(lambda: front_end(path))  # noqa: B023
            cli_seconds, rss = _cli(path)
            rows.append(
                f"| {name} | {seconds:.2f} | {peak / MIB:.1f} | {cli_seconds:.2f} | {rss / MIB:.0f} |"
            )
            messages.append(f"{name}: {message[:150]}")
            print(rows[-1], file=sys.stderr)
    print("| attack | front end, s | peak Python memory, MiB | `archc shapes`, s | peak RSS, MiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print()
    print("\n".join(messages))


if __name__ == "__main__":
    main()
