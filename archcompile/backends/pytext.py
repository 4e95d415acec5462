"""Free text made safe for generated Python source.

Spec descriptions, block docs, string parameters and file names reach the
generated module. Whatever they contain (newlines, quotes, triple quotes,
backslashes, carriage returns, Unicode line separators, control characters),
the functions here make them a comment line, a docstring or a string literal
and nothing else; ``tests/test_reliability.py`` checks this with ``ast`` on
hostile inputs.
"""

from __future__ import annotations

import textwrap

from archcompile.backends.pyfmt import LINE_LENGTH


def py_string(text: str) -> str:
    """A string literal that is exactly ``text`` (any content), quoted as
    ``ruff format`` quotes it: double quotes, unless ``text`` holds more double
    quotes than single quotes (fewer escapes)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + quote)
        elif ch == "\n":
            out.append("\\n")
        elif ch.isprintable() and ch not in "\u2028\u2029":
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return quote + "".join(out) + quote


def comment_text(text: str) -> str:
    """``text`` made safe for one comment line: controls and line breaks escaped."""
    out = []
    for ch in text:
        if ch.isprintable() and ch not in "\u2028\u2029":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii") if ord(ch) < 0x10000 else "?")
    return "".join(out)


def docstring_text(text: str, indent: str) -> str:
    """``text`` as the inside of a ``\"\"\"docstring\"\"\"``: one line per line of
    text, stripped as ruff would, with quotes, backslashes and controls escaped.

    Text that fits on the first line (or cannot be wrapped) is closed on that
    line, as ``ruff format`` closes it; otherwise the closing quotes get a line
    of their own."""
    lines = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = ""
        for ch in raw.strip():
            if ch == "\\":
                line += "\\\\"
            elif ch == '"':
                line += '\\"'
            elif ch.isprintable() and ch not in "\u2028\u2029":
                line += ch
            else:
                line += ch.encode("unicode_escape").decode("ascii") if ord(ch) < 0x10000 else "?"
        lines.append(line.strip())
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        return ""
    if len(lines) > 1 or len(indent) + len(lines[0]) + 6 > LINE_LENGTH:
        lines = _wrap(lines, LINE_LENGTH - len(indent))
    if len(lines) == 1:
        # ruff format never moves closing quotes for the line length; it joins
        # them to a text that is on the first line only, however long that line
        # (a text of 79-81 characters at indent 4 wraps to one line, and so
        # does one unbreakable word of any length).
        return lines[0]
    return (
        lines[0]
        + "\n"
        + "\n".join((indent + line) if line else "" for line in lines[1:])
        + "\n"
        + indent
    )


def _wrap(lines: list[str], width: int) -> list[str]:
    """Re-flow each line to ``width`` (the first one shares its line with the quotes)."""
    out: list[str] = []
    for index, line in enumerate(lines):
        if not line:
            out.append("")
            continue
        opener = '"""' if index == 0 else ""
        wrapped = textwrap.wrap(
            line,
            width,
            initial_indent=opener,
            break_long_words=False,
            break_on_hyphens=False,
        )
        out += [wrapped[0][len(opener) :], *wrapped[1:]]
    return out
