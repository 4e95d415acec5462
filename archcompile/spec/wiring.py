"""Names and ``from:`` while a spec is expanded: which earlier values a layer
may read, and the spec's ``outputs:``.

An item of a layer list may carry two keys besides its kind::

    - conv: {out: 64, kernel: 1}
      name: reduce          # its attribute name, and a value later items can read
    - concat:
      from: [reduce, input] # several values joined explicitly

What a ``from:`` may name depends on where the list is (:class:`Body`): the
first item of a top-level block reads earlier blocks (or ``input``); an item
of a definition's own layer list reads earlier named items of that list (or
``input``, the block's input). Elsewhere a ``from:`` is refused, with a hint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from archcompile.errors import clipped_repr
from archcompile.ir import INPUT, Output, block_reads, reached
from archcompile.spec.names import attribute_problem, did_you_mean
from archcompile.spec.scope import Abort
from archcompile.spec.source import SourceMap, SpecPath

#: keys an item may carry besides its kind
ITEM_KEYS = ("name", "from", "if")


@dataclass
class Body:
    """The list being expanded: where it is and the names visible in it."""

    where: Literal["block", "define", "other"] = "other"
    #: names a ``from:`` may read here, in order of definition
    visible: list[str] = field(default_factory=lambda: [INPUT])
    #: names given so far in this list (each once)
    named: set[str] = field(default_factory=set)


def split_item(expander: Any, item: dict, path: SpecPath, smap: SourceMap) -> tuple[str, dict]:
    """The kind of a mapping item, and its ``name``/``from`` keys."""
    extra = {key: item[key] for key in ITEM_KEYS if key in item}
    kinds = [key for key in item if key not in ITEM_KEYS]
    if len(kinds) != 1:
        expander.error(
            smap,
            path,
            "a layer is a mapping with one key, its kind (and optionally name: and from:); got "
            + (", ".join(map(repr, kinds)) if kinds else "no kind"),
            "arguments go inside the kind's mapping: '- conv: {out: 64, kernel: 3}'",
        )
        raise Abort
    return kinds[0], extra


def wiring(
    expander: Any,
    extra: dict,
    kind: str,
    index: int,
    path: SpecPath,
    smap: SourceMap,
    body: Body,
    join: bool = False,
) -> tuple[str | None, tuple[str, ...]]:
    """The checked ``name`` and ``from`` of one item."""
    name = extra.get("name")
    if name is not None:
        problem = attribute_problem(name, "layer")
        if problem is None and name == INPUT:
            problem = f"layer name {INPUT!r} is the input of the block"
        if problem is None and name in body.named:
            problem = f"layer name {name!r} is used twice in this list"
        if problem:
            expander.error(smap, path + ("name",), problem)
            raise Abort
    reads: tuple[str, ...] = ()
    if "from" in extra:
        reads = _reads(expander, extra["from"], kind, index, path + ("from",), smap, body, join)
    if name is not None:
        body.named.add(name)
        if body.where == "define":
            body.visible.append(name)
    return name, reads


def _reads(
    expander: Any,
    raw: Any,
    kind: str,
    index: int,
    path: SpecPath,
    smap: SourceMap,
    body: Body,
    join: bool,
) -> tuple[str, ...]:
    if body.where in ("other", "repeat") or (body.where == "block" and index > 0):
        expander.error(
            smap,
            path,
            "from: is allowed on the first layer of a block and in a define's own layer list",
            "start a new block at this layer, or move these layers into a define",
        )
        raise Abort
    names = raw if isinstance(raw, list) else [raw]
    if not names or not all(isinstance(n, str) for n in names):
        expander.error(
            smap, path, f"from: takes a name or a list of names, got {clipped_repr(raw)}"
        )
        raise Abort
    for position, name in enumerate(names):
        if name not in body.visible:
            what = "an earlier block" if body.where == "block" else "an earlier named layer"
            hint = did_you_mean(name, body.visible) or "names readable here: " + ", ".join(
                body.visible
            )
            expander.error(
                smap,
                path + ((position,) if isinstance(raw, list) else ()),
                f"from: {name!r} is not {what} or 'input'",
                hint,
            )
            raise Abort
    if len(names) > 1 and not join:
        expander.error(
            smap,
            path,
            f"{kind} reads one value; {len(names)} values must be joined explicitly",
            f"join them first: '- concat:' (or '- add:') with 'from: {names}'",
        )
        raise Abort
    return tuple(names)


def outputs(
    expander: Any, raw: Any, blocks: list[str], written: list[str], smap: SourceMap
) -> tuple[Output, ...]:
    """The spec's ``outputs:``; by default the last block. ``written``: every
    block name of the spec, also those that failed (no second error for them)."""
    if raw is None:
        return (Output(name=blocks[-1]),) if blocks else ()
    if raw == []:
        expander.error(smap, ("outputs",), "outputs lists no block", "name one block at least")
        return ()
    items = raw if isinstance(raw, list) else [raw]
    result: list[Output] = []
    for index, item in enumerate(items):
        path: SpecPath = ("outputs", index) if isinstance(raw, list) else ("outputs",)
        fields = {"name": item} if isinstance(item, str) else item
        if not isinstance(fields, dict) or not isinstance(fields.get("name"), str):
            expander.error(
                smap,
                path,
                f"an output is a block name or {{name: ..., training_only: ..., "
                f"loss_weight: ...}}, got {clipped_repr(item)}",
            )
            continue
        unknown = [k for k in fields if k not in ("name", "training_only", "loss_weight")]
        for key in unknown:
            expander.error(
                smap,
                path + (key,),
                f"an output has no key {key!r}",
                did_you_mean(key, ["name", "training_only", "loss_weight"]),
                key=True,
            )
        name = fields["name"]
        if name in written and name not in blocks:
            continue  # the block itself is in error
        if name not in blocks:
            hint = did_you_mean(name, blocks) or "outputs name blocks: " + ", ".join(blocks)
            expander.error(smap, path, f"output {name!r} is not a block", hint)
            continue
        training_only = fields.get("training_only", False)
        weight = fields.get("loss_weight", 1.0)
        if not isinstance(training_only, bool):
            expander.error(smap, path + ("training_only",), "training_only must be true or false")
            continue
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not 0 <= weight <= 1e6
        ):
            expander.error(
                smap,
                path + ("loss_weight",),
                f"loss_weight must be a number in [0, 1000000], got {weight!r}",
            )
            continue
        if any(o.name == name for o in result):
            expander.error(smap, path, f"output {name!r} is listed twice")
            continue
        result.append(Output(name=name, training_only=training_only, loss_weight=float(weight)))
    if result and all(o.training_only for o in result):
        expander.error(
            smap, ("outputs",), "every output is training_only; eval would return nothing"
        )
    return tuple(result)


def check_reached(
    expander: Any, blocks: list, outputs: tuple[Output, ...], smap: SourceMap
) -> None:
    """Every block must feed an output: a block nothing reads is a mistake
    (and would be dead code in the generated ``forward``)."""
    needed = reached(block_reads(blocks), [o.name for o in outputs])
    for block in blocks:
        if block.name not in needed:
            expander.error(
                smap,
                ("blocks", block.name),
                f"block {block.name!r} is not read by any output",
                "read it with from:, list it in outputs:, or remove it",
                key=True,
            )
