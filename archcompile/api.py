"""The Python API: archc for code that calls it, like ``timm.create_model``.

Every function takes a spec in any form a caller holds one: a loaded
:class:`Spec`, a path (``str`` or ``os.PathLike``), YAML text (a ``str``
with a line break, or a one-line flow mapping ``{...}``) or a ``dict``.
Parameters are set with Python values (``set={"num_classes": 100}``), checked
as ``--set`` is. Every mistake raises an :class:`~archcompile.errors.ArchcError`
with the diagnostics the command line prints, never a bare Python error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from archcompile.errors import Diagnostic, SpecError, UsageError, clipped_repr
from archcompile.limits import DEFAULT_LIMITS
from archcompile.spec.loader import (
    Spec,
    display_path,
    load_spec,
    load_spec_data,
    load_spec_text,
    respecialize,
)
from archcompile.tree import ShapeReport

if TYPE_CHECKING:
    import torch

SpecLike: TypeAlias = "Spec | str | os.PathLike[str] | Mapping[str, Any]"
Values: TypeAlias = "Mapping[str, bool | int | float | str] | None"
InputShape: TypeAlias = "Sequence[int] | None"


def load(spec: SpecLike, set: Values = None, input: InputShape = None) -> Spec:
    """The loaded, validated :class:`Spec`, with ``set`` parameters and the
    ``input`` shape ``(C, H, W)`` applied."""
    values = _values(set)
    shape = _input_shape(input)
    if isinstance(spec, Spec):
        if not values and shape is None:
            return spec
        return respecialize(spec, shape, values=values)
    if isinstance(spec, Mapping):
        return load_spec_data(spec, input_shape=shape, values=values)
    if isinstance(spec, str) and _is_text(spec):
        return load_spec_text(spec, input_shape=shape, values=values)
    if isinstance(spec, (str, os.PathLike)):
        return _load_path(Path(spec), shape, values)
    raise UsageError(
        Diagnostic(
            f"a spec is a Spec, a path, YAML text or a dict, not {type(spec).__name__}",
            hint='archcompile.build("specs/googlenet.yaml")',
        )
    )


def shapes(spec: SpecLike, set: Values = None, input: InputShape = None) -> ShapeReport:
    """Shapes, parameter counts and MACs of every node (the annotated tree),
    in pure Python: torch is not imported."""
    return load(spec, set, input).tree()


def build(
    spec: SpecLike,
    set: Values = None,
    weights: str | os.PathLike[str] | None = None,
    input: InputShape = None,
    max_params: int = DEFAULT_LIMITS.max_params,
    optimize: bool | str | Sequence[str] | None = None,
) -> torch.nn.Module:
    """A live ``torch.nn.Module``; with ``weights`` (a run folder, or a
    ``.safetensors``/``.pt`` state_dict file), loaded strictly: every key and
    shape must match. ``optimize``: ``True`` for the default optimizing passes,
    or the names of the passes (see :mod:`archcompile.passes`); the
    ``state_dict`` stays that of the plain build."""
    from archcompile.backends.torch_build import build_module

    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise UsageError(
            Diagnostic(
                f"weights= takes a path (a run folder or a state_dict file), "
                f"not {type(weights).__name__}",
                hint="to load a state_dict you hold, call model.load_state_dict(state_dict)",
            )
        )
    model = build_module(load(spec, set, input), max_params)
    if weights is not None:
        from archcompile.weights import load_strict

        load_strict(model, Path(weights))
    if optimize:
        from archcompile.passes import optimize as apply_passes

        apply_passes(model, optimize)
    return model


def generate_source(
    spec: SpecLike,
    set: Values = None,
    input: InputShape = None,
    optimize: bool | str | Sequence[str] | None = None,
) -> str:
    """Standalone PyTorch source, byte-for-byte deterministic. With ``optimize``
    selecting ``fuse_1x1``, sibling 1x1 convs are called as one conv (the
    other passes act on a built module, not on source)."""
    from archcompile.backends.codegen import generate

    fuse = False
    if optimize:
        from archcompile.passes import select

        fuse = "fuse_1x1" in select(optimize)
    return generate(load(spec, set, input), fuse=fuse)


def _is_text(text: str) -> bool:
    """YAML text rather than a path: a line break, or a flow mapping."""
    return "\n" in text or text.lstrip().startswith("{")


def _load_path(path: Path, shape, values) -> Spec:
    if not path.exists():
        raise SpecError(
            Diagnostic(
                "no such file",
                file=display_path(path),
                hint="a str without a line break is read as a path; YAML text needs one",
            )
        )
    return load_spec(path, input_shape=shape, values=values)


def _values(values: object) -> Mapping[str, object]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise UsageError(
            Diagnostic(
                f"set= takes a dict of parameters, not {type(values).__name__}",
                hint='set={"num_classes": 100}',
            )
        )
    return values


def _input_shape(value: object) -> tuple[int, int, int] | None:
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple)) else []
    if len(items) == 3 and all(type(v) is int and 1 <= v < 2**31 for v in items):
        return (items[0], items[1], items[2])
    raise UsageError(
        Diagnostic(
            f"input= takes (channels, height, width), positive integers, not {clipped_repr(value)}"
        )
    )
