"""Where ``extends:`` may reach: an untrusted spec must not read (and have
archc print) any file of the machine.

- The target is a relative or absolute path of a ``.yaml``/``.yml`` file, of
  at most :data:`MAX_TARGET` characters, without NUL or control characters.
- A relative target resolves against the extending file's folder and must
  stay, symbolic links followed, inside the folder tree of the spec named on
  the command line (its root); ``../`` may move within that tree, never out.
- An absolute target (even one inside the tree), or one that leaves the
  tree, is refused unless it lies in a folder given with
  ``--allow-extends DIR`` (``allow_extends=`` in the library).
- Messages name the target as written in the spec; they never show the
  content of a file that is not known to be a spec.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from archcompile.errors import SpecError, clipped_repr

#: longest ``extends`` value accepted (PATH_MAX is 4096; specs use a few dozen)
MAX_TARGET = 1024
SUFFIXES = (".yaml", ".yml")

Fail = Callable[..., SpecError]


@dataclass(frozen=True)
class Roots:
    """The folders ``extends`` may read from: the spec's tree, and those allowed."""

    tree: Path
    allowed: tuple[Path, ...] = ()

    @classmethod
    def of(cls, folder: Path, allowed: Sequence[str | os.PathLike[str]] = ()) -> Roots:
        return cls(_real(folder), tuple(_real(Path(a)) for a in allowed))

    def resolve(self, target: object, folder: Path, fail: Fail) -> Path:
        """The real path of the spec ``target`` names from ``folder``, or ``fail``."""
        text = _check_text(target, fail)
        try:
            path = (folder / text).resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop
            raise fail(f"extends target {clipped_repr(text)} cannot be resolved: {_reason(exc)}")
        roots = self.allowed if os.path.isabs(text) else (self.tree, *self.allowed)
        if not any(_inside(path, root) for root in roots):
            where = "an absolute path" if os.path.isabs(text) else "outside the spec's folder"
            raise fail(
                f"extends target {clipped_repr(text)} is {where}; it is not read",
                "extends reads specs in the spec's own folder tree; pass "
                "--allow-extends DIR to allow another folder",
            )
        _check_file(path, text, fail)
        return path


def _check_text(target: object, fail: Fail) -> str:
    if not isinstance(target, str) or not target:
        raise fail("extends must name a spec file")
    if len(target) > MAX_TARGET:
        raise fail(
            f"extends target is {len(target):,} characters long; the limit is {MAX_TARGET:,}"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        raise fail(f"extends target {clipped_repr(target)} holds a control character")
    if not target.lower().endswith(SUFFIXES):
        raise fail(
            f"extends target {clipped_repr(target)} is not a .yaml file",
            "extends names another spec, a .yaml or .yml file",
        )
    return target


def _check_file(path: Path, text: str, fail: Fail) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise fail(f"extends target {clipped_repr(text)} not found") from None
    except OSError as exc:
        raise fail(f"extends target {clipped_repr(text)} cannot be read: {_reason(exc)}") from None
    if stat.S_ISREG(info.st_mode):
        return
    # a directory, or a device or pipe that could block or never end
    what = "a directory" if stat.S_ISDIR(info.st_mode) else "a device or pipe"
    raise fail(f"extends target {clipped_repr(text)} is {what}, not a spec file")


def _real(folder: Path) -> Path:
    try:
        return folder.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(folder))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "a symbolic-link loop" if isinstance(exc, RuntimeError) else type(exc).__name__
