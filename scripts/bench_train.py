"""Measure training-step time and evaluation throughput of a spec on this machine.

Prints figures; asserts nothing. Example:

    python scripts/bench_train.py specs/googlenet.yaml --batch-size 64 --steps 10
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import archcompile


def bench(
    spec_path: str, batch: int, steps: int, channels_last: bool, bf16: bool
) -> tuple[float, float]:
    spec = archcompile.load_spec(spec_path)
    torch.manual_seed(0)
    model = archcompile.build(spec)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *spec.graph.input).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    model.train()
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    step = sorted(times[2:])[len(times[2:]) // 2]
    model.eval()
    evals = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(4):
            start = time.perf_counter()
            model(x)
            evals.append(time.perf_counter() - start)
    return step, batch / sorted(evals[1:])[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--bf16", action="store_true", help="also measure bfloat16 autocast")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"{'spec':28} {'batch':>5} {'layout':>14} {'dtype':>5} {'s/step':>7} {'train img/s':>11} {'eval img/s':>10}"
    )
    for spec in args.specs:
        for batch in args.batch_size:
            for channels_last in (False, True):
                for bf16 in (False, True) if args.bf16 else (False,):
                    step, eval_rate = bench(spec, batch, args.steps, channels_last, bf16)
                    layout = "channels_last" if channels_last else "default"
                    dtype = "bf16" if bf16 else "fp32"
                    print(
                        f"{spec:28} {batch:>5} {layout:>14} {dtype:>5} {step:7.3f} {batch / step:11.0f} {eval_rate:10.0f}"
                    )


if __name__ == "__main__":
    main()
