"""The one output-file policy of archc, and the durable writes it relies on.

Every command that writes a file (``build -o``, ``eval --plot``, the files of
``train --out``, and any future ``export`` or ``graph``) goes through
:func:`check_output` and then :func:`replace_atomically`:

- only regular files are written: a directory, FIFO, device, socket or
  symbolic link at the path is refused, even with ``--force``; the path is
  examined with ``lstat`` and opened with ``O_NONBLOCK | O_NOFOLLOW``, so a
  FIFO never blocks;
- an existing file is replaced only when archc wrote it (recognized from its
  first :data:`HEADER_BYTES` bytes, never the whole file), unless forced;
- a path ending in ``/`` names a folder, never a file;
- missing parent folders are created only when the caller says so.

Writes go to a temporary file in the same folder, are flushed to disk
(``fsync`` of the file, then of the folder) and renamed over the target.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from archcompile.errors import Diagnostic, OutputError

#: bytes of an existing file read to recognize it
HEADER_BYTES = 4096


class Owner(Enum):
    """Who wrote an existing file, as far as its header tells."""

    ARCHC = "archc"  # archc wrote it and nobody changed it since
    EDITED = "edited"  # archc wrote it, then somebody edited it
    OTHER = "other"  # not an archc file


#: reads an open file (at most what it needs) and says who wrote it
Recognizer = Callable[[int], Owner]

#: the tEXt ``Software`` value of every PNG archc writes (how it knows them)
PNG_SOFTWARE = "archc"


def is_archc_png(header: bytes) -> bool:
    """Whether a file's first bytes are those of a PNG archc wrote."""
    marker = b"tEXtSoftware\x00" + PNG_SOFTWARE.encode()
    return header.startswith(b"\x89PNG\r\n\x1a\n") and marker in header


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _fail(path: str, message: str, hint: str | None = None) -> OutputError:
    return OutputError(Diagnostic(message, file=path, hint=hint))


def read_header(fd: int, limit: int = HEADER_BYTES) -> bytes:
    """At most ``limit`` bytes from the start of the open file ``fd``."""
    chunks, size = [], 0
    while size < limit:
        chunk = os.pread(fd, limit - size, size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def check_output(
    path: str | os.PathLike[str],
    *,
    force: bool,
    recognize: Recognizer,
    what: str = "file",
    parents: bool = False,
    hint: str = "choose another path, or pass --force to replace it",
) -> Path:
    """Raise :class:`OutputError` unless archc may write ``path``; return it."""
    text = os.fspath(path)
    if text.endswith(("/", os.sep)) or os.path.basename(text) in ("", ".", ".."):
        raise _fail(text, f"names a folder; give the name of the {what} to write")
    target = Path(text)
    try:
        info = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        _check_parent(target, text, parents)
        return target
    except OSError as exc:
        raise _fail(text, f"cannot use this path: {exc.strerror or exc}") from None
    kind = _kind(info.st_mode)
    if kind is not None:
        raise _fail(text, f"is {kind}; archc writes only regular files", f"name a {what} to write")
    if force:
        return target
    owner = _owner(target, text, recognize)
    if owner is Owner.OTHER:
        raise _fail(text, "exists and was not written by archc; refusing to overwrite it", hint)
    if owner is Owner.EDITED:
        raise _fail(
            text,
            "was edited by hand since archc wrote it; refusing to overwrite it",
            "move your edits into the spec, or pass --force to discard them",
        )
    return target


def _check_parent(target: Path, text: str, parents: bool) -> None:
    parent = target.parent
    try:
        info = os.stat(parent)
    except FileNotFoundError:
        if parents:
            return
        raise _fail(text, f"folder {parent} does not exist", "create it first") from None
    except OSError as exc:
        raise _fail(text, f"cannot use this path: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise _fail(text, f"{parent} is not a folder")


def _owner(target: Path, text: str, recognize: Recognizer) -> Owner:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags)
    except OSError as exc:
        raise _fail(text, f"cannot read the existing file: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the lstat
            raise _fail(text, "is not a regular file; archc writes only regular files")
        return recognize(fd)
    except OSError:
        return Owner.OTHER
    finally:
        os.close(fd)


def default_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 minus the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (renames, new files) durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def replace_atomically(path: Path, write: Callable[[str], None], parents: bool = True) -> None:
    """Replace ``path`` in one step: ``write(tmp)`` fills a temporary file in the
    same folder, which is flushed to disk and renamed over ``path``. Readers see
    the old file or the new one, never half of one; on failure the old file
    stays. The temporary name is short, so any valid ``path`` works."""
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".archc-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, default_mode())  # mkstemp's 0600 would survive the rename
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, text: str, parents: bool = True) -> None:
    """Replace ``path`` with ``text`` (see :func:`replace_atomically`)."""
    replace_atomically(
        path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", newline="\n"), parents
    )


def write_output(path: Path, write: Callable[[str], None], parents: bool = False) -> None:
    """:func:`replace_atomically`, with an ``OSError`` as a located one-line error."""
    try:
        replace_atomically(path, write, parents)
    except OSError as exc:
        raise _fail(os.fspath(path), f"cannot write: {exc.strerror or exc}") from None
