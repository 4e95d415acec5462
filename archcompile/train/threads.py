"""How many threads ``archc train`` and ``archc eval`` use, and how they wait.

On a machine shared with other CPU-bound processes, torch's default (one
thread per core, OpenMP threads that spin while they wait for work) collapses:
a spinning thread holds a core another process needs, and a step waits for
its slowest thread. archc therefore

- sets ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep while they wait) unless the
  environment sets it; OpenMP reads it once, when torch is imported, so
  :func:`prepare` must run before the first ``import torch`` (the CLI calls it
  before importing anything that imports torch);
- uses one thread per core of its share of the machine, less one per other
  process that is running (``/proc/loadavg``'s count of runnable tasks), and
  checks that count again as training goes (:class:`ThreadGovernor`);
- ``--threads N`` fixes the count instead (and ``OMP_WAIT_POLICY`` set in the
  environment is kept).

This module imports torch only inside functions that need it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

WAIT_POLICY = "OMP_WAIT_POLICY"
#: how often (in steps) training checks the machine's load again
RECHECK_STEPS = 20


def prepare(environ: dict[str, str] | None = None) -> str:
    """Set the OpenMP wait policy before torch starts; return the one in force."""
    env = os.environ if environ is None else environ
    env.setdefault(WAIT_POLICY, "PASSIVE")
    return env[WAIT_POLICY]


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def share(total: int | None = None, environ: dict[str, str] | None = None) -> int:
    """This process's share of the cores: all of them, or an equal part under
    torchrun (``LOCAL_WORLD_SIZE`` processes on this machine)."""
    env = os.environ if environ is None else environ
    try:
        local = max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, (cores() if total is None else total) // local)


def runnable_others(samples: int = 5, path: str = "/proc/loadavg") -> int | None:
    """How many other tasks are running or ready to run right now: the
    smallest of a few readings of ``/proc/loadavg``, less this thread; None
    where the file does not exist."""
    counts = []
    for i in range(samples):
        try:
            with open(path, encoding="ascii") as handle:
                field = handle.read().split()[3]
            counts.append(int(field.split("/")[0]))
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(0.002)
    return max(0, min(counts) - 1)


def auto_threads(own_share: int, others: int | None) -> int:
    """One thread per core of ``own_share``, less one per other running task."""
    return max(1, own_share - (others or 0))


@dataclass
class ThreadGovernor:
    """Sets torch's thread count: fixed (``--threads N``) or automatic,
    re-checked every :data:`RECHECK_STEPS` steps."""

    fixed: int | None = None
    own_share: int = 1
    current: int = 0

    @classmethod
    def start(cls, fixed: int | None = None) -> ThreadGovernor:
        governor = cls(fixed, share())
        governor.apply()
        return governor

    def wanted(self) -> int:
        if self.fixed is not None:
            return self.fixed
        return auto_threads(self.own_share, runnable_others())

    def apply(self) -> int:
        import torch

        wanted = self.wanted()
        if wanted != self.current:
            torch.set_num_threads(wanted)
            self.current = wanted
        return wanted

    def step(self, step: int) -> None:
        """Called after each training step: re-check the load now and then."""
        if self.fixed is None and step % RECHECK_STEPS == 0:
            self.apply()


__all__ = ["ThreadGovernor", "auto_threads", "prepare", "runnable_others", "share"]
