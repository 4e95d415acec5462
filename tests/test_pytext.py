"""Docstrings written by ``pytext.docstring_text`` are already in ``ruff format``'s
style, for every length of text around the line length.

ruff never re-wraps docstrings and never moves their closing quotes because of
the line length; what it does do is collapse a docstring whose text is on the
first line only (whitespace after it) into one line with the closing quotes
right after the text, however long that line gets. So a one-line text that
the generator decides to wrap, but that still fits on the first line after the
wrapping, must come out as a one-line docstring.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_ruff_accepts

from archcompile.backends.pyfmt import INDENT
from archcompile.backends.pytext import docstring_text

LENGTHS = range(60, 101)
WORDS = "a to the spec block conv2d inception branch convolution".split()


def _texts(length: int) -> list[str]:
    """Texts of exactly ``length`` characters: words of several sizes (so that
    a wrap point falls everywhere), one unbreakable word, and a first line
    followed by a blank line and a second paragraph (the model docstring)."""
    texts = []
    for start in range(len(WORDS)):
        words, text = WORDS[start:] + WORDS[:start], ""
        while len(text) < length:
            text += words[len(text) % len(words)] + " "
        text = text[:length].rstrip()
        texts.append(text + "x" * (length - len(text)))
    texts.append("x" * length)
    texts.append(texts[0] + "\n\n" + texts[1])
    return texts


def _module(indent: str) -> str:
    """One class (nested to reach ``indent``) per text, each with its docstring."""
    classes = []
    for length in LENGTHS:
        for number, text in enumerate(_texts(length)):
            lines = [
                f"{INDENT * level}class C{length}_{number}_{level}:"
                for level in range(len(indent) // len(INDENT))
            ]
            lines.append(f'{indent}"""{docstring_text(text, indent)}"""')
            classes.append("\n".join(lines))
    return "\n\n\n".join(classes) + "\n"


@pytest.mark.parametrize("indent", [INDENT, INDENT * 2], ids=["class", "nested"])
def test_docstrings_of_every_length_are_ruff_formatted(indent: str, tmp_path: Path) -> None:
    path = tmp_path / "docstrings.py"
    path.write_text(_module(indent), encoding="utf-8")
    assert_ruff_accepts(path)


@pytest.mark.parametrize("length", LENGTHS)
def test_a_text_that_fits_the_first_line_stays_on_one_line(length: int) -> None:
    """The rule itself: what ends up on one line is closed on that line."""
    for text in _texts(length):
        doc = docstring_text(text, INDENT)
        lines = doc.split("\n")
        if len(lines) > 1:
            assert any(line.strip() for line in lines[1:]), repr(doc)
