"""Explicit resource limits for untrusted specs.

Specs arrive from colleagues, tutorials and pull requests, so every stage that
could be made to do unbounded work has a documented ceiling. The figures are
listed in ``docs/reliability.md``; change them there too.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INT = 2**31 - 1  # largest integer a spec may contain (channel counts, sizes)


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1 << 20  # a spec is a few KiB; 1 MiB leaves room
    max_yaml_events: int = 50_000  # parser events before anything is built
    max_depth: int = 64  # nesting of YAML collections
    # values after alias expansion ("billion laughs"); GoogLeNet's spec has
    # about 300, and a spec near this limit still loads in a fraction of a second
    max_nodes: int = 20_000
    max_extends_depth: int = 16  # chain of ``extends:`` files
    max_call_depth: int = 32  # nesting of defined blocks inside each other
    max_layers: int = 10_000  # layers after expanding ``repeat`` and definitions
    max_params: int = 2_000_000_000  # parameters a live module may allocate


DEFAULT_LIMITS = Limits()
