"""Training throughput on an idle machine and beside one CPU-bound process.

Measures images per second of training steps (the step of ``archc train``:
forward, cross-entropy, backward, SGD step, in ``channels_last``) for several
thread policies, each in a fresh process (OpenMP reads its wait policy when
torch loads), first with the machine idle and then with one competing
process spinning on a core, and prints a table with the share of the idle
throughput each policy keeps. Asserts nothing. Examples:

    python scripts/bench_shared.py                   # GoogLeNet, batch 64 (minutes)
    python scripts/bench_shared.py --tiny            # a few seconds: checks the script

Policies:

- ``torch``: what archc did before (torch's default: one thread per core,
  OpenMP's default wait policy, ``OMP_WAIT_POLICY`` unset);
- ``archc``: what ``archc train`` does now (``OMP_WAIT_POLICY=PASSIVE``, one
  thread per core less one per other running task, re-checked every 20 steps);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` with one thread per core;
- ``one``: one thread (``--threads 1``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ("torch", "archc", "passive", "one")
SPIN = "while True:\n    pass\n"


def worker(policy: str, spec_path: str, batch: int, steps: int) -> dict:
    """One measurement, in this (fresh) process: set the policy, then import torch."""
    sys.path.insert(0, str(ROOT))
    from archcompile.train import threads

    if policy in ("archc", "passive", "one"):
        threads.prepare()
    import torch
    import torch.nn.functional as F

    import archcompile

    governor = None
    if policy == "archc":
        governor = threads.ThreadGovernor.start(None)
    elif policy == "one":
        torch.set_num_threads(1)
    spec = archcompile.load_spec(spec_path)
    torch.manual_seed(0)
    model = archcompile.build(spec).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, *spec.graph.input).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    times = []
    for step in range(1, steps + 3):
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
        if governor is not None:
            governor.step(step)
    measured = times[2:]  # the first two steps warm up
    return {
        "images_per_s": batch * len(measured) / sum(measured),
        "threads": torch.get_num_threads(),
        "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    }


def _measure(policy: str, args: argparse.Namespace, loaded: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    competitor = None
    if loaded:
        competitor = subprocess.Popen([sys.executable, "-c", SPIN])
        time.sleep(1.0)  # let it take its core
    try:
        command = [sys.executable, __file__, "--worker", policy, "--spec", args.spec]
        command += ["--batch-size", str(args.batch_size), "--steps", str(args.steps)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/googlenet.yaml")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="measured steps (after 2 warm-up)")
    parser.add_argument("--repeats", type=int, default=1, help="median of this many runs")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument("--tiny", action="store_true", help="a tiny spec and 2 steps")
    parser.add_argument("--worker", choices=POLICIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.spec, args.batch_size, args.steps)))
        return
    if args.tiny:
        args.spec, args.batch_size, args.steps = "tests/specs/tiny_cnn.yaml", 16, 2
    args.spec = str((Path.cwd() / args.spec).resolve())
    print(f"{args.spec}, batch {args.batch_size}, {args.steps} steps, {os.cpu_count()} cores")
    print(f"{'policy':8} {'threads':>11} {'idle img/s':>10} {'loaded img/s':>12} {'kept':>6}")
    for policy in args.policies:
        idle, loaded, counts = [], [], []
        for _ in range(args.repeats):
            for busy, into in ((False, idle), (True, loaded)):
                result = _measure(policy, args, busy)
                into.append(result["images_per_s"])
                counts.append(str(result["threads"]))
        a, b = statistics.median(idle), statistics.median(loaded)
        threads = "/".join(dict.fromkeys(counts))  # idle, then loaded
        print(f"{policy:8} {threads:>11} {a:10.1f} {b:12.1f} {b / a:6.0%}", flush=True)


if __name__ == "__main__":
    main()
