"""``make bench``: side-by-side, interleaved benchmarks of archc (see docs/performance.md)."""
