"""The one exception hierarchy of archc and the diagnostics it carries.

Every mistake a user can make (in a spec, on the command line, in a checkpoint or
a data file) ends as an :class:`ArchcError`. It holds one or more
:class:`Diagnostic` records with a location, so the CLI can print all of them
as ``file:line:col: error: message (at spec.path)`` and exit 1, without a
traceback.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

#: longest piece of user input a message quotes: never echo a megabyte back
QUOTE_LIMIT = 60


def clip(text: str) -> str:
    """``text`` shortened to ``QUOTE_LIMIT`` characters for a message."""
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."


def clipped_repr(value: object) -> str:
    """``repr(value)``, shortened for a message."""
    return clip(repr(value))


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


#: categories never printed raw: controls (newline, ESC), format characters
#: (bidirectional overrides, zero-width), line/paragraph separators,
#: surrogates (undecodable bytes of a file name) and unassigned code points
_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def shown(value: object) -> str:
    """``value`` as text that is safe to print in a message: the one function
    every user-supplied string (a path, a name, a value) goes through.

    Control and invisible characters (newline, ESC, bidirectional overrides,
    undecodable bytes of a file name) are shown escaped (``\\n``,
    ``\\x1b``), so a name can neither forge a line nor drive the terminal.
    Rich markup is never interpreted: the CLI's consoles print with markup
    off, and characters the stream cannot encode are replaced by the stream
    (see ``archcompile.cli``)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_escape_char(ch) if unicodedata.category(ch) in _UNSAFE else ch for ch in text)


@dataclass(frozen=True)
class Diagnostic:
    """One located message about one mistake."""

    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str | None = None  # spec path such as ``blocks.block3[1].inception``
    hint: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def format(self) -> str:
        """Render as compilers do: ``file:line:col: error: message (at path)``."""
        where = _location(self.file and shown(self.file), self.line, self.column)
        text = f"{where}: error: {shown(self.message)}"
        if self.path:
            text += f" (at {shown(self.path)})"
        lines = [text]
        lines += [f"  note: {shown(note)}" for note in self.notes]
        if self.hint:
            lines.append(f"  hint: {shown(self.hint)}")
        return "\n".join(lines)


def _location(file: str | None, line: int | None, column: int | None) -> str:
    if file is None:
        return "archc"
    if line is None:
        return file
    if column is None:
        return f"{file}:{line}"
    return f"{file}:{line}:{column}"


class ArchcError(Exception):
    """Base of every error archc reports to a user."""

    exit_code = 1

    def __init__(self, diagnostics: Diagnostic | str | Iterable[Diagnostic]) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(d.format() for d in self.diagnostics)

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class SpecError(ArchcError):
    """The spec is not valid YAML, not valid archc, or cannot be read."""


class ShapeError(SpecError):
    """The spec is well formed but its tensor shapes do not work out."""


class LimitError(SpecError):
    """The input exceeds one of the documented resource limits."""


class CodegenError(ArchcError):
    """The spec is valid but cannot be rendered as standalone source."""


class OutputError(ArchcError):
    """archc refuses to write an output file (it would lose someone's work)."""


class BuildError(ArchcError):
    """A live module cannot be built (for example it would not fit in memory)."""


class CheckpointError(ArchcError):
    """A checkpoint is missing, corrupt, or belongs to another spec."""


class DataError(ArchcError):
    """A data set file is missing, truncated or corrupt."""


class UsageError(ArchcError):
    """A command-line argument, or an argument of the Python API, is wrong
    (exit code 2)."""

    exit_code = 2


class TrainingError(ArchcError):
    """Training cannot go on (for example the loss is no longer finite)."""
