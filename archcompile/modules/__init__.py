"""archc's own module classes: the modules ``torch.nn`` lacks.

Each ``*.py`` file of this package (other than this one) holds module classes
written once, as standalone PyTorch source that imports only ``torch``. A
lowering row names one as ``ModuleCall("archc:Attention", ...)`` (see
:data:`PREFIX`). Both backends read the same text:

- the live backend imports the file and instantiates the class
  (:func:`load`), so the live module is the class itself;
- the source backend copies the class's source verbatim into the generated
  file, only when it is used, with the imports it needs and the other helper
  classes it names (:func:`sources`, :func:`imports`).

This module does not import torch: it finds the classes by parsing the files.
"""

from __future__ import annotations

import ast
import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the prefix of a ``ModuleCall.ctor`` that names a class of this package
PREFIX = "archc:"

#: the only imports a helper file may use, as the generated file writes them
ALLOWED_IMPORTS = (
    "import torch",
    "import torch.nn.functional as F",
    "from torch import Tensor, nn",
)


@dataclass(frozen=True)
class Helper:
    """One class: its name, the file that holds it, its source text, the
    imports it uses and the other helper classes it names."""

    name: str
    module: str
    source: str
    imports: frozenset[str]
    needs: frozenset[str]


def helper_name(ctor: str) -> str | None:
    """The class a ``ModuleCall.ctor`` names, or None for a ``torch.nn`` one."""
    return ctor[len(PREFIX) :] if ctor.startswith(PREFIX) else None


def _imports_of(tree: ast.Module, text: str) -> dict[str, str]:
    """Top-level names bound by the file's imports -> the import line."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            line = ast.get_source_segment(text, node) or ""
            if line == "from __future__ import annotations":
                continue
            if line not in ALLOWED_IMPORTS:
                raise ValueError(
                    f"helper modules may only use {ALLOWED_IMPORTS}, not {line!r}"
                )
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = line
    return names


def _read(path: Path) -> list[Helper]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    imports = _imports_of(tree, text)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    helpers = []
    for node in classes:
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        helpers.append(
            Helper(
                name=node.name,
                module=f"{__name__}.{path.stem}",
                source=ast.get_source_segment(text, node) or "",
                imports=frozenset(imports[u] for u in used if u in imports),
                needs=frozenset(),
            )
        )
    return helpers


@functools.cache
def registry() -> dict[str, Helper]:
    """Every helper class, by name."""
    found: dict[str, Helper] = {}
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for helper in _read(path):
            if helper.name in found:
                raise ValueError(f"two helper classes are named {helper.name!r}")
            found[helper.name] = helper
    names = set(found)
    for name, helper in list(found.items()):
        tree = ast.parse(helper.source)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} & names - {
            name
        }
        found[name] = Helper(**{**helper.__dict__, "needs": frozenset(used)})
    return found


def closure(names: set[str]) -> list[str]:
    """``names`` and every helper they need, sorted (dependencies first)."""
    table = registry()
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for other in sorted(table[name].needs):
            visit(other)
        done.append(name)

    for name in sorted(names):
        visit(name)
    return done


def sources(names: set[str]) -> list[str]:
    """The verbatim source of the helpers ``names`` (and what they need)."""
    return [registry()[n].source for n in closure(names)]


def imports(names: set[str]) -> set[str]:
    """The import lines the helpers ``names`` need in a generated file."""
    return {line for n in closure(names) for line in registry()[n].imports}


def load(name: str) -> Any:
    """The live class ``name`` (imports torch)."""
    return getattr(importlib.import_module(registry()[name].module), name)
