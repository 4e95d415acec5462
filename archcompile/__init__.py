"""archc: a compiler for neural-network architectures written as YAML.

The public API (see docs/python-api.md); a spec is a loaded :class:`Spec`, a
path, YAML text or a dict::

    report = archcompile.shapes("specs/googlenet.yaml")   # pure Python, no torch
    model = archcompile.build("specs/googlenet.yaml", set={"num_classes": 100})
    source = archcompile.generate_source("specs/googlenet.yaml")
"""

from __future__ import annotations

from archcompile.api import build, generate_source, load, shapes
from archcompile.errors import ArchcError
from archcompile.spec import Spec, load_spec, load_spec_text
from archcompile.tree import ShapeReport, Tree

__version__ = "0.1.0"

#: the name this API had first; ``shapes`` takes every form of spec
infer_shapes = shapes
# ``archcompile.shapes`` is the function above, not the submodule of the same
# name; that stays importable as ``from archcompile.shapes import ...``.

__all__ = [
    "ArchcError",
    "ShapeReport",
    "Spec",
    "Tree",
    "build",
    "generate_source",
    "infer_shapes",
    "load",
    "load_spec",
    "load_spec_text",
    "shapes",
]
