"""``archc train --nproc N``: run the same command under torchrun.

The launcher's standard error is filtered: each process prints the same
error, so a line already shown is not shown again, and torchrun's own
traceback after a failed process (``ChildFailedError``) is dropped, since
the processes have said what went wrong in archc's words. With ``--debug``
nothing is filtered.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence


def torchrun_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run ... -m archcompile ARGS`` without ``--nproc``."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--nproc":
            del args[i : i + 2]
            break
        if arg.startswith("--nproc="):
            del args[i]
            break
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "archcompile",
        *args,
    ]


def relaunch(nproc: int, argv: Sequence[str], debug: bool = False) -> int:
    """Run the command on ``nproc`` processes; return torchrun's exit code.
    Ctrl-C reaches every process directly (same process group): this one
    waits for them to write their checkpoints and exit."""
    command = torchrun_command(nproc, argv)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if debug:
            return subprocess.call(command)
        with subprocess.Popen(command, stderr=subprocess.PIPE) as process:
            _forward(process.stderr)
            return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def _forward(stream) -> None:
    seen: set[bytes] = set()
    dropping = False
    out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
    for line in stream:
        if line.startswith(b"Traceback (most recent call last)"):
            dropping = True  # torchrun's report of a failed process, to the end
        if dropping or line in seen:
            continue
        seen.add(line)
        if out is not None:
            out.write(line)
            out.flush()
        else:  # pragma: no cover - a replaced sys.stderr (tests)
            sys.stderr.write(line.decode("utf-8", "replace"))
