"""The ``norm:`` of ``conv`` and ``conv_transpose``: which norm, with its arguments.

Written ``norm: batch``, ``norm: {batch: {eps: 0.001, momentum: 0.01}}`` or
``norm: {group: {groups: 32}}``; validated into a :class:`NormArgs`. An
argument left out is ``None`` until :func:`with_defaults` fills it from the
spec's ``defaults`` of the stand-alone kind (``batchnorm``, ``groupnorm``);
what is still ``None`` then is torch's default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from archcompile.errors import clip
from archcompile.fields import _float_field, _integer, _shown

#: norm -> (the stand-alone kind whose defaults reach it, its arguments)
NORMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "batch": ("batchnorm", ("eps", "momentum")),
    "group": ("groupnorm", ("groups", "eps")),
}


class NormArgs(BaseModel):
    """A validated ``norm:``; ``None``: not given (torch's default, or a default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["batch", "group"]
    eps: float | None = None
    momentum: float | None = None
    groups: int | None = None


def _check(name: str, key: str, value: Any) -> Any:
    what = f"the {key} of norm {name}"
    if key == "groups":
        return _integer(value, 1, what)
    return _float_field(0.0, 1.0, what).func(value)


_SPELLINGS = "'batch', {batch: {eps: ..., momentum: ...}} or {group: {groups: ..., eps: ...}}"


def _problem(message: str, **values: Any) -> PydanticCustomError:
    return PydanticCustomError("norm", message, values)


def check_norm(value: Any) -> NormArgs:
    if isinstance(value, NormArgs):
        return value
    if isinstance(value, str):
        if value == "group":
            raise _problem("norm 'group' needs its number of groups: {group: {groups: 32}}")
        if value not in NORMS:
            raise _problem("norm must be {s}, got {got}", s=_SPELLINGS, got=_shown(value))
        return NormArgs(kind=value)  # type: ignore[arg-type]
    if not isinstance(value, dict) or len(value) != 1:
        raise _problem("norm must be {s}, got {got}", s=_SPELLINGS, got=clip(repr(value)))
    ((name, args),) = value.items()
    if name not in NORMS:
        raise _problem("unknown norm {got}; norm must be {s}", got=_shown(name), s=_SPELLINGS)
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise _problem(
            "the arguments of norm {n} must be a mapping, got {got}", n=name, got=_shown(args)
        )
    allowed = NORMS[name][1]
    for key in args:
        if key not in allowed:
            raise _problem(
                "norm {n} has no argument {k} (it takes {a})",
                n=name,
                k=_shown(key),
                a=", ".join(allowed),
            )
    if name == "group" and "groups" not in args:
        raise _problem("norm 'group' needs its number of groups: {group: {groups: 32}}")
    return NormArgs(kind=name, **{k: _check(name, k, v) for k, v in args.items()})  # type: ignore[arg-type]


def _json_schema() -> dict:
    # (archc schema allows a $name in place of each argument)
    number = {"type": "number", "minimum": 0, "maximum": 1}
    integer = {"type": "integer", "minimum": 1}
    args = {"eps": number, "momentum": number, "groups": integer}

    def spelled(name: str) -> dict:
        inner = {
            "type": "object",
            "properties": {a: args[a] for a in NORMS[name][1]},
            "additionalProperties": False,
        }
        if name == "group":
            inner["required"] = ["groups"]
        else:
            inner = {"anyOf": [inner, {"type": "null"}]}
        return {
            "type": "object",
            "properties": {name: inner},
            "required": [name],
            "additionalProperties": False,
        }

    return {
        "anyOf": [{"const": "batch"}, spelled("batch"), spelled("group")],
        "description": "a norm after the convolution: 'batch', {batch: {eps, momentum}} "
        "or {group: {groups, eps}}",
    }


Norm = Annotated[NormArgs, PlainValidator(check_norm), WithJsonSchema(_json_schema())]


def with_defaults(norm: NormArgs, *sources: dict[str, Any]) -> NormArgs:
    """``norm`` with its missing arguments taken from ``sources`` in order
    (plain values keyed by argument name)."""
    update = {}
    for name in NORMS[norm.kind][1]:
        if getattr(norm, name) is not None:
            continue
        for source in sources:
            if source.get(name) is not None:
                update[name] = source[name]
                break
    return norm.model_copy(update=update) if update else norm
