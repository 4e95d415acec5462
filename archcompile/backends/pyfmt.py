"""Lay out bracketed Python expressions the way ``ruff format`` does.

The generated source must already be in ruff's style (``ruff format --check``
passes), so calls, lists and signatures are laid out here with the same three
steps: everything on one line if it fits in 88 columns; otherwise the contents
on one indented line between the brackets; otherwise one item per line with a
trailing comma. ``Bracket(magic=True)`` always takes the last form, as ruff
does for a "magic trailing comma" (used for ``nn.Sequential`` bodies so that
adding a layer changes one line of a diff).
"""

from __future__ import annotations

import ast
import unicodedata
from dataclasses import dataclass, field

LINE_LENGTH = 88
INDENT = "    "


def width(text: str) -> int:
    """Columns ``text`` takes, as ruff counts them: East Asian wide characters
    (CJK, most emoji) take two, combining marks none, the rest one."""
    if text.isascii():
        return len(text)
    total = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


@dataclass
class Bracket:
    """``head`` + items + ``close``: ``nn.Conv2d(`` ... ``)``, ``[`` ... ``]``."""

    head: str
    items: list[tuple[str, Item]] = field(default_factory=list)  # (prefix such as "p=", item)
    close: str = ")"
    magic: bool = False

    def flat(self) -> str:
        return self.head + ", ".join(p + flat(i) for p, i in self.items) + self.close

    def exploded(self) -> bool:
        """Must be laid out one item per line: it, or a bracket inside it, is magic."""
        return self.magic or any(isinstance(i, Bracket) and i.exploded() for _, i in self.items)


Item = str | Bracket


def flat(item: Item) -> str:
    return item if isinstance(item, str) else item.flat()


def call(func: str, *args: Item, magic: bool = False, **kwargs: Item) -> Bracket:
    items: list[tuple[str, Item]] = [("", a) for a in args]
    items += [(f"{k}=", v) for k, v in kwargs.items()]
    return Bracket(f"{func}(", items, ")", magic)


def parse_call(source: str) -> Item:
    """A one-line call expression as a :class:`Bracket` (so it can be wrapped)."""
    tree = ast.parse(source, mode="eval").body
    if not isinstance(tree, ast.Call):
        return source
    func = ast.get_source_segment(source, tree.func) or ""
    items: list[tuple[str, Item]] = [("", _segment(source, a)) for a in tree.args]
    items += [(f"{k.arg}=", _segment(source, k.value)) for k in tree.keywords]
    return Bracket(f"{func}(", items, ")")


def _segment(source: str, node: ast.expr) -> Item:
    text = ast.get_source_segment(source, node) or ""
    return parse_call(text) if isinstance(node, ast.Call) else text


def layout(item: Item, indent: str, prefix: str = "", suffix: str = "") -> list[str]:
    """Lines for ``prefix + item + suffix`` at ``indent``."""
    if isinstance(item, str):
        return [indent + prefix + item + suffix]
    one_line = indent + prefix + item.flat() + suffix
    exploded = item.exploded()
    if not exploded and (width(one_line) <= LINE_LENGTH or not item.items):
        return [one_line]
    inner = indent + INDENT
    if prefix.endswith(" = ") and width(indent + prefix + item.head) > LINE_LENGTH:
        # the opening bracket does not fit after the target: ruff puts the
        # right-hand side in parentheses when that makes every line fit
        wrapped = [indent + prefix + "(", *layout(item, inner), indent + ")" + suffix]
        if all(width(line) <= LINE_LENGTH for line in wrapped):
            return wrapped
    if not exploded:
        contents = inner + ", ".join(p + flat(i) for p, i in item.items)
        if width(contents) <= LINE_LENGTH:
            return [indent + prefix + item.head, contents, indent + item.close + suffix]
    lines = [indent + prefix + item.head]
    for item_prefix, sub in item.items:
        lines += layout(sub, inner, item_prefix, ",")
    lines.append(indent + item.close + suffix)
    return lines
