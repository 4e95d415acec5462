"""``make bench``: print one table of side-by-side, interleaved measurements.

    python -m bench.run                  # the full run (about 5-10 minutes on 2 cores)
    BENCH_QUICK=1 python -m bench.run    # a smoke run of under two minutes
    python -m bench.run --only compile,passes --rounds 3

Benchmarks assert nothing about time; tests check correctness.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass

import torch


@dataclass
class Config:
    rounds: int = 7  # timed round-robin rounds of the model sections (after 1 warm-up)
    batch: int = 64
    sizes: tuple[int, ...] = (10, 100, 1_000, 10_000)
    compile_rounds: int = 3
    process_rounds: int = 7
    only: tuple[str, ...] = ()


QUICK = Config(rounds=2, batch=16, sizes=(10, 100, 1_000), compile_rounds=2, process_rounds=2)


def parse(argv: list[str]) -> Config:
    base = QUICK if os.environ.get("BENCH_QUICK") == "1" else Config()
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--rounds", type=int, default=base.rounds)
    parser.add_argument("--batch", type=int, default=base.batch)
    parser.add_argument("--sizes", default=",".join(map(str, base.sizes)))
    parser.add_argument("--compile-rounds", type=int, default=base.compile_rounds)
    parser.add_argument("--process-rounds", type=int, default=base.process_rounds)
    parser.add_argument("--only", default="", help="comma-separated sections")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    only = tuple(s for s in args.only.split(",") if s)
    return Config(args.rounds, args.batch, sizes, args.compile_rounds, args.process_rounds, only)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> str:
    from bench.sections import SECTIONS, timed
    from bench.timing import table

    config = parse(sys.argv[1:] if argv is None else argv)
    names = config.only or tuple(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    rows = []
    for name in names:
        section_rows, seconds = timed(name, config)
        print(f"bench: {name} took {seconds:.1f} s", file=sys.stderr, flush=True)
        rows += section_rows
    text = (
        f"machine: {machine()}\n"
        f"config: rounds {config.rounds}, batch {config.batch}, sizes {config.sizes}, "
        f"process rounds {config.process_rounds}\n"
        "speed-up: baseline time / variant time per round (median, min-max over rounds)\n\n"
        + table(rows)
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
