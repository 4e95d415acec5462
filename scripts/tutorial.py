"""The tutorial's training run, and its loss at the steps the comparison uses.

Runs ``archc train`` with the tutorial's settings (plain SGD, learning rate
0.1, batch 64, constant rate, fp32), then prints the training loss at steps
0, 100, 176, 500 and 1000 from the run's ``metrics.jsonl`` (step 0 is the
first batch, before any update: archc's step 1 line), the mean over the last
100 steps and the test accuracy. Examples:

    python scripts/tutorial.py                              # Glorot-uniform, 1000 steps
    python scripts/tutorial.py --spec specs/googlenet.yaml  # torch's default init
    python scripts/tutorial.py --steps 3 --out /tmp/t -- --limit-train 256 --limit-test 64

Options after ``--`` go to ``archc train`` (``--force`` to train again into
the same folder).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: the tutorial's steps of interest; its loss reached 1.97, then 4.04 at step 176
STEPS = (0, 100, 176, 500, 1000)


def command(spec: str, steps: int, out: str, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "archcompile",
        "train",
        spec,
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--batch-size",
        "64",
        "--schedule",
        "constant",
        "--precision",
        "fp32",
        "--max-steps",
        str(steps),
        "--out",
        out,
        *extra,
    ]


def report(out: Path, steps: int) -> None:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = {r["step"]: r for r in records if r["type"] == "train"}
    print(f"{'step':>5} {'loss':>8} {'batch accuracy':>15}")
    for step in STEPS:
        record = train.get(max(step, 1)) if step <= steps else None
        if record is not None:
            loss = "nan" if record["loss"] is None else f"{record['loss']:.4f}"
            print(f"{step:>5} {loss:>8} {record['accuracy']:>15.1%}")
    last = [
        r["loss"] for s, r in sorted(train.items()) if s > steps - 100 and r["loss"] is not None
    ]
    if last:
        print(f"mean loss over the last {len(last)} steps: {sum(last) / len(last):.4f}")
    for record in records:
        if record["type"] == "eval":
            print(f"test accuracy at step {record['step']}: {record['accuracy']:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/googlenet_glorot.yaml")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", default="runs/tutorial-glorot")
    parser.add_argument("extra", nargs="*", help="more archc train options, after --")
    args = parser.parse_args()
    run = command(args.spec, args.steps, args.out, args.extra)
    print(" ".join(run[2:]).replace("archcompile", "archc", 1), flush=True)
    code = subprocess.run(run, check=False).returncode
    if (Path(args.out) / "metrics.jsonl").exists():
        report(Path(args.out), args.steps)
    sys.exit(code)


if __name__ == "__main__":
    main()
