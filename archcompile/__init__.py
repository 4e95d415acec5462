"""archc: a compiler for neural-network architectures written as YAML.

The public API::

    spec = archcompile.load_spec("specs/googlenet.yaml")
    report = archcompile.infer_shapes(spec)      # pure Python, no torch
    model = archcompile.build(spec)              # a live torch.nn.Module
    source = archcompile.generate_source(spec)   # standalone PyTorch source
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archcompile.errors import ArchcError
from archcompile.spec import Spec, load_spec, load_spec_text
from archcompile.tree import ShapeReport, Tree

if TYPE_CHECKING:
    import torch

__version__ = "0.1.0"


def infer_shapes(spec: Spec) -> ShapeReport:
    """Shapes, parameter counts and MACs of every node (the annotated tree),
    without torch."""
    return spec.tree()


def build(spec: Spec) -> torch.nn.Module:
    """A live ``torch.nn.Module`` for ``spec`` (imports torch)."""
    from archcompile.backends.torch_build import build_module

    return build_module(spec)


def generate_source(spec: Spec) -> str:
    """Standalone PyTorch source for ``spec``, byte-for-byte deterministic."""
    from archcompile.backends.codegen import generate

    return generate(spec)


__all__ = [
    "ArchcError",
    "ShapeReport",
    "Spec",
    "Tree",
    "build",
    "generate_source",
    "infer_shapes",
    "load_spec",
    "load_spec_text",
]
