"""A training output folder: one owner at a time, created by archc, with a
``metrics.jsonl`` that survives a crash in the middle of a write.

- ``.archc-run`` marks a folder archc created; archc refuses to train into a
  non-empty folder without it (unless ``--force``, or ``--resume`` of a run
  an older archc wrote), so a user's own files are never overwritten.
- ``.archc-lock`` is locked (``fcntl.flock``, exclusive) for the run's life
  and holds the owner's pid: a second ``archc train`` on the same folder
  fails at once, naming that pid. The lock goes with the process, however it
  ends, so a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from archcompile import jsonsafe
from archcompile.errors import CheckpointError, Diagnostic, TrainingError
from archcompile.files import write_atomic

MARKER = ".archc-run"
LOCK = ".archc-lock"
METRICS = "metrics.jsonl"
_MARKER_TEXT = '{"format": "archc-run", "version": 1}\n'


def _error(path: Path, message: str, hint: str | None = None) -> TrainingError:
    return TrainingError(Diagnostic(message, file=str(path), hint=hint))


class RunFolder:
    """The output folder of one run, locked while the object is open."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def open(self, resume: bool, force: bool) -> RunFolder:
        """Create (or check) the folder and take its lock."""
        self._create(resume, force)
        self._lock()
        return self

    def _create(self, resume: bool, force: bool) -> None:
        path = self.path
        try:
            if path.exists() and not path.is_dir():
                raise _error(path, "exists and is not a folder", "choose another --out")
            if path.is_dir():
                entries = {e.name for e in path.iterdir() if e.name != LOCK}
                # a run of an older archc has no marker, but a checkpoint
                ours = entries & {MARKER, "LATEST"} or (resume and "checkpoint.json" in entries)
                if entries and not ours and not force:
                    raise _error(
                        path,
                        "is a non-empty folder that archc did not create; refusing to write into it",
                        "choose another --out, or pass --force to train into it anyway",
                    )
            path.mkdir(parents=True, exist_ok=True)
            if not (path / MARKER).exists():
                write_atomic(path / MARKER, _MARKER_TEXT, parents=False)
        except OSError as exc:
            raise _error(path, f"cannot create the output folder: {exc.strerror or exc}") from None

    def _lock(self) -> None:
        lock = self.path / LOCK
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise _error(lock, f"cannot open the lock file: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise _error(
                self.path,
                f"another archc train (pid {holder}) is writing to this folder",
                "wait for it to finish, or choose another --out",
            ) from None
        except OSError as exc:
            os.close(fd)
            raise _error(lock, f"cannot lock: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def read_metrics(path: Path, warn: Any = None) -> list[dict]:
    """The records of ``metrics.jsonl``. A torn last line (a crash during a
    write) is left out, with a warning through ``warn(message)``; any other
    line that is not a JSON object is a located error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(Diagnostic(f"cannot read: {exc.strerror or exc}", file=str(path)))
    lines = data.split(b"\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict):
            if number == len(lines):  # no newline after it: a torn last write
                if warn is not None:
                    warn(
                        f"{path}:{number}: warning: incomplete last line (a crash during a write?); ignored"
                    )
                continue
            raise CheckpointError(
                Diagnostic(
                    "not a JSON object; metrics.jsonl is corrupt", file=str(path), line=number
                )
            ) from None
        records.append(record)
    return records


def truncate_metrics(path: Path, step: int, warn: Any = None) -> None:
    """Keep the records up to ``step`` (those of the checkpoint resumed from),
    dropping what was logged after it and any torn last line."""
    if not path.exists():
        return
    kept = [r for r in read_metrics(path, warn) if _step(r) <= step]
    write_atomic(path, "".join(jsonsafe.dumps(r) + "\n" for r in kept), parents=False)


def _step(record: dict) -> int:
    value = record.get("step", 0)
    return value if isinstance(value, int) else 0
