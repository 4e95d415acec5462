"""Interleaved timing and the one table ``make bench`` prints.

Variants of a row are run round-robin (A B C, A B C, ...) so that drift of a
loaded or throttling machine hits them alike; each round gives one ratio per
variant against the row's baseline measured in the same round. A row reports
the median of those ratios and their spread (min-max over rounds).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    """One line of the table: ``variant`` against ``baseline`` in ``section``."""

    section: str
    variant: str
    baseline: str
    unit: str  # what `value` and `base` are: "s", "img/s", "ms/layer"
    value: float  # median of the variant
    base: float  # median of the baseline
    ratio: float  # median per-round speed-up (baseline time / variant time)
    low: float  # min over rounds
    high: float  # max over rounds
    rounds: int
    note: str = ""


def interleave(
    variants: dict[str, Callable[[], object]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each variant, ``rounds`` times, round-robin;
    ``warmup`` untimed round-robin calls first."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def rows_against(
    section: str,
    times: dict[str, list[float]],
    baseline: str,
    per: float = 1.0,
    unit: str = "s",
    notes: dict[str, str] | None = None,
) -> list[Row]:
    """A row per variant other than ``baseline``: its speed-up round by round.

    ``per``: items per call (images), so that ``unit`` "img/s" reports
    throughput; otherwise values are seconds per call.
    """
    rows = []
    base_times = times[baseline]
    for name, values in times.items():
        if name == baseline:
            continue
        ratios = [b / v for b, v in zip(base_times, values, strict=True)]
        rows.append(
            Row(
                section,
                name,
                baseline,
                unit,
                _shown(statistics.median(values), per, unit),
                _shown(statistics.median(base_times), per, unit),
                statistics.median(ratios),
                min(ratios),
                max(ratios),
                len(ratios),
                (notes or {}).get(name, ""),
            )
        )
    return rows


def _shown(seconds: float, per: float, unit: str) -> float:
    return per / seconds if unit == "img/s" else seconds


def _value(x: float, unit: str) -> str:
    if unit == "img/s":
        return f"{x:,.0f} img/s" if x >= 10 else f"{x:.2f} img/s"
    if unit == "ms/layer":
        return f"{x:.3f} ms/layer"
    return f"{x * 1000:,.0f} ms" if x < 10 else f"{x:,.1f} s"


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table (pasteable into docs/performance.md)."""
    lines = [
        "| section | variant | baseline | variant | baseline | speed-up | spread | n | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.section} | {r.variant} | {r.baseline} | {_value(r.value, r.unit)} "
            f"| {_value(r.base, r.unit)} | {r.ratio:.2f}x | {r.low:.2f}-{r.high:.2f} "
            f"| {r.rounds} | {r.note} |"
        )
    return "\n".join(lines)
