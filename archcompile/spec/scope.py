"""Values in scope while a spec is expanded, and where each came from.

A ``Value`` carries three things at once: the concrete value (validated into
the IR), the same value with ``Expr`` wherever a parameter was passed through
(for the code generator), and the place it was written (for error messages,
which point at the call site of a composite block rather than its definition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archcompile.spec.schema import DefinitionDoc
from archcompile.spec.source import SourceMap, SpecPath


@dataclass(frozen=True)
class DefinitionSource:
    """A ``define:`` entry together with where it was written."""

    name: str
    doc: DefinitionDoc
    smap: SourceMap
    path: SpecPath

    def signature(self) -> str:
        defaults = getattr(self.doc.params, "defaults", {})
        parts = [
            "[" + ", ".join(p) + "]"
            if isinstance(p, tuple)
            else f"{p}={defaults[p]!r}"
            if p in defaults
            else p
            for p in self.doc.params
        ]
        return f"{self.name}: [{', '.join(parts)}]"


@dataclass(frozen=True)
class Where:
    smap: SourceMap
    path: SpecPath


@dataclass(frozen=True)
class Value:
    """A resolved value: concrete, symbolic (for codegen), and where it came from."""

    value: Any
    symbol: Any
    where: Where
    spec_params: frozenset[str] = frozenset()
    name: str | None = None  # the $name it was bound to, if any
    items: tuple[Value, ...] = ()  # elements, for lists


@dataclass(frozen=True)
class Scope:
    names: dict[str, Value]
    stack: tuple[str, ...] = ()  # definitions being expanded, outermost first


class Abort(Exception):
    """Stop expanding one item; its diagnostic is already recorded."""


def tupled(value: Any) -> Any:
    return tuple(tupled(v) for v in value) if isinstance(value, list) else value


def group_name(param: str | tuple[str, ...]) -> str:
    """A destructured group ``[c2_reduce, c2]`` is passed as one argument named
    after its last element (``c2``), as torchvision's Inception does."""
    return param[-1] if isinstance(param, tuple) else param


def duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    return repeated
