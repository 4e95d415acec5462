"""The one shape rule of joins: ``concat`` (channels summed), ``add`` (same
shape) and ``mul`` (torch broadcasting), of branches or of named values.

Shapes exclude the batch (see :mod:`archcompile.shapes`); dimensions may be
symbolic, so checks only fire on known sizes (``names`` given).
"""

from __future__ import annotations

from archcompile.shapes import Shape, ShapeProblem, format_shape
from archcompile.symbolic import Dim

_AXES = {3: ("channels", "height", "width"), 1: ("features",)}


def join_shapes(
    mode: str, shapes: list[Shape | None], names: list[str] | None = None, what: str = ""
) -> Shape | None:
    """The shape of values joined by ``concat``, ``add`` or ``mul``.

    With ``names`` the join is checked (known sizes must agree) and a
    :class:`ShapeProblem` names the ``what`` (branch or input) at fault.
    """
    if any(s is None for s in shapes):
        return None
    labels = names or []
    if mode == "add":
        return _add(shapes, labels, what)  # type: ignore[arg-type]
    if mode == "mul":
        return _mul(shapes, labels, what)  # type: ignore[arg-type]
    return _concat(shapes, labels, what)  # type: ignore[arg-type]


def _add(shapes: list[Shape], labels: list[str], what: str) -> Shape:
    first = shapes[0]
    for index, other in enumerate(shapes[1:], 1):
        if labels and other != first:
            raise _differ(
                f"add {_plural(what)} differ",
                labels,
                shapes,
                index,
                f"every {what} of 'add' must produce the same shape"
                + ("; 'mul' broadcasts sizes of 1" if 1 in other or 1 in first else ""),
            )
    return first


def _concat(shapes: list[Shape], labels: list[str], what: str) -> Shape:
    first = shapes[0]
    for index, other in enumerate(shapes):
        if labels and len(other) != 3:
            raise ShapeProblem(
                f"concat {what} {labels[index]} gives {format_shape(other)}, not an image"
            )
    for index, other in enumerate(shapes[1:], 1):
        if labels and other[1:] != first[1:]:
            raise _differ(
                f"concat {_plural(what)} differ in spatial size",
                labels,
                shapes,
                index,
                "concat joins on channels; height and width must match",
            )
    channels: Dim = 0
    for other in shapes:
        c = other[0]
        channels = None if channels is None or c is None else channels + c
    return (channels, *first[1:])


def _mul(shapes: list[Shape], labels: list[str], what: str) -> Shape | None:
    """Torch broadcasting over the dimensions after the batch: the values must
    have the same rank, and each size must be equal or 1 in one of them (a
    [N, C, 1, 1] gate scales every position of a [N, C, H, W] image)."""
    result = shapes[0]
    for index, other in enumerate(shapes[1:], 1):
        if len(other) != len(result):
            if labels:
                raise _differ(
                    f"mul {_plural(what)} differ in rank",
                    labels,
                    shapes,
                    index,
                    "mul broadcasts values of the same rank: a gate for an image is "
                    "[N, C, 1, 1] (global_avgpool without flatten), or [N, 1, H, W]",
                )
            return None
        dims = []
        for axis, (a, b) in enumerate(zip(result, other)):
            dims.append(_broadcast(a, b, axis, labels, shapes, index, what))
        result = tuple(dims)
    return result


def _broadcast(a: Dim, b: Dim, axis: int, labels, shapes, index: int, what: str) -> Dim:
    if a == b or b == 1:
        return a
    if a == 1:
        return b
    if a is None or b is None:
        return None
    if not labels or not (isinstance(a, int) and isinstance(b, int)):
        # symbolic (checked where the sizes are known): equal unless one is 1,
        # so a known size other than 1 is the result, else the first
        return b if isinstance(b, int) else a
    name = _AXES.get(len(shapes[0]), ())[axis : axis + 1] or (f"dimension {axis + 1}",)
    first = next(i for i in range(index) if shapes[i][axis] == a)
    raise ShapeProblem(
        f"mul {_plural(what)} do not broadcast: {labels[first]} gives "
        f"{format_shape(shapes[first])}, {labels[index]} gives {format_shape(shapes[index])}; "
        f"their {name[0]} ({a} and {b}) differ and neither is 1",
        "mul broadcasts as torch does: each size must be equal in both, or 1 in one "
        "of them (a [N, C, 1, 1] gate scales every position of [N, C, H, W])",
    )


def _plural(what: str) -> str:
    return {"branch": "branches"}.get(what, what + "s")


def _differ(what: str, labels: list[str], shapes: list, index: int, hint: str) -> ShapeProblem:
    return ShapeProblem(
        f"{what}: {labels[0]} gives {format_shape(shapes[0])}, "
        f"{labels[index]} gives {format_shape(shapes[index])}",
        hint,
    )
