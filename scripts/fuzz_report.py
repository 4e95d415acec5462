"""Run the front-end fuzz cases of ``tests/fuzzing.py`` and count what happens.

    .venv/bin/python scripts/fuzz_report.py [-n 2000] [--seed 0] [--kinds 40]

Prints the cases run, the successes, the errors grouped by kind (exception
class and first message, with names and numbers blanked out) and the crashes
(anything else), with the first input that caused each crash. Exits 1 when
there is a crash. The same mutations run in ``tests/test_fuzz.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import Case, Crash, cases, run_front_end
from hypothesis import HealthCheck, Phase, given, seed, settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--cases", type=int, default=2000, help="cases to run")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the mutations")
    parser.add_argument("--kinds", type=int, default=40, help="error kinds to list")
    args = parser.parse_args()

    successes = 0
    errors: Counter[str] = Counter()
    crashes: dict[str, tuple[int, Case]] = {}
    run = 0

    @seed(args.seed)
    @settings(
        max_examples=args.cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def one(case: Case) -> None:
        nonlocal run, successes
        run += 1
        try:
            outcome = run_front_end(case)
        except Crash as crash:
            key = str(crash).split("\n")[0][:100]
            count, first = crashes.get(key, (0, case))
            crashes[key] = (count + 1, first)
            return
        if outcome.ok:
            successes += 1
        else:
            errors[outcome.kind] += 1

    start = time.perf_counter()
    one()
    seconds = time.perf_counter() - start

    print(f"cases run:       {run:,} ({seconds:.0f} s, seed {args.seed})")
    print(f"successes:       {successes:,}")
    print(f"located errors:  {sum(errors.values()):,} in {len(errors)} distinct kinds")
    print(f"crashes:         {sum(c for c, _ in crashes.values()):,} in {len(crashes)} kinds")
    print()
    print(f"most frequent error kinds (of {len(errors)}):")
    for kind, count in errors.most_common(args.kinds):
        print(f"  {count:6,}  {kind}")
    for key, (count, case) in crashes.items():
        print()
        print(f"CRASH x{count}: {key}")
        print(f"  first input: {case.describe()}")
        print("  text:")
        for line in case.text.splitlines()[:80]:
            print(f"    {line!r}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
