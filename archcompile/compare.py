"""Compare two specs: the diff of their generated source and of their blocks."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from archcompile.backends.codegen import generate, split_header
from archcompile.shapes import Shape
from archcompile.spec import Spec


@dataclass(frozen=True)
class BlockChange:
    name: str
    before: tuple[Shape, int] | None  # (shape, params); None when the block is new
    after: tuple[Shape, int] | None  # None when the block was removed


@dataclass(frozen=True)
class Comparison:
    source_diff: list[str]  # unified diff lines of the generated bodies
    blocks: list[BlockChange]  # only blocks whose shape or parameters changed

    @property
    def equal(self) -> bool:
        return not self.source_diff and not self.blocks


def _body(spec: Spec) -> list[str]:
    """Generated source without its header: two files always differ in their
    spec name and hash, which is not what a reader of the diff wants to see."""
    text = generate(spec)
    parsed = split_header(text)
    return (parsed[1] if parsed else text).splitlines(keepends=True)


def compare(a: Spec, b: Spec) -> Comparison:
    diff = list(difflib.unified_diff(_body(a), _body(b), fromfile=a.display, tofile=b.display, n=2))
    before = {r.name: (r.shape, r.params) for r in a.tree().blocks}
    after = {r.name: (r.shape, r.params) for r in b.tree().blocks}
    names = list(before) + [n for n in after if n not in before]
    changes = [
        BlockChange(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)
    ]
    return Comparison(diff, changes)
