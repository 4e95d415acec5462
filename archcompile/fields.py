"""Field types and the common base of the layer models (:mod:`archcompile.layers`).

Each helper validates one argument with the language's messages and declares
the JSON Schema of what it accepts, so that ``archc schema`` derives every
field's type, range and description from the same line that validates it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

from archcompile.errors import clip
from archcompile.limits import MAX_INT

Pair = tuple[int, int]


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return clip(repr(value) if isinstance(value, str) else str(value))


def _integer(value: Any, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a string" if isinstance(value, str) else type(value).__name__
        if isinstance(value, float):
            kind = "a float"
        elif isinstance(value, bool):
            kind = "a boolean"
        raise PydanticCustomError(
            "integer",
            "{what} must be an integer, got {kind} {got}",
            {"what": what, "kind": kind, "got": _shown(value)},
        )
    if value < minimum:
        raise PydanticCustomError(
            "range",
            "{what} must be at least {minimum}, got {got}",
            {"what": what, "minimum": minimum, "got": _shown(value)},
        )
    if value > MAX_INT:
        raise PydanticCustomError(
            "range",
            "{what} must be at most 2**31 - 1, got {got}",
            {"what": what, "got": _shown(value)},
        )
    return value


# Each helper below also declares the JSON Schema of what it accepts (its
# ``json_schema_input_type``), so that ``archc schema`` derives every field's
# type, range and description from the same line that validates it.


def _int_type(minimum: int, what: str | None = None) -> Any:
    return Annotated[int, Field(ge=minimum, le=MAX_INT, description=what)]


def _int_field(minimum: int, what: str):
    return PlainValidator(
        lambda v: _integer(v, minimum, what),
        json_schema_input_type=_int_type(minimum, f"{what}: an integer >= {minimum}"),
    )


def _pair_type(minimum: int, what: str) -> Any:
    one = _int_type(minimum)
    return Annotated[
        one | tuple[one, one],
        Field(description=f"{what}: an integer >= {minimum}, or a [height, width] pair"),
    ]


def _pair_field(minimum: int, what: str):
    def check(value: Any) -> int | Pair:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise PydanticCustomError(
                    "pair",
                    "{what} must be an integer or a [height, width] pair, got {n} values",
                    {"what": what, "n": len(value)},
                )
            return (
                _integer(value[0], minimum, what),
                _integer(value[1], minimum, what),
            )
        return _integer(value, minimum, what)

    return PlainValidator(check, json_schema_input_type=_pair_type(minimum, what))


def _float_field(low: float, high: float, what: str, *, high_open: bool = False):
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PydanticCustomError(
                "number",
                "{what} must be a number, got {got}",
                {"what": what, "got": _shown(value)},
            )
        value = float(value)
        too_high = value >= high if high_open else value > high
        if not low <= value or too_high or math.isnan(value):
            bracket = ")" if high_open else "]"
            raise PydanticCustomError(
                "range",
                "{what} must be in [{low}, {high}{bracket}, got {got}",
                {
                    "what": what,
                    "low": low,
                    "high": high,
                    "bracket": bracket,
                    "got": value,
                },
            )
        return value

    bound = {"lt" if high_open else "le": high}
    bracket = ")" if high_open else "]"
    described = f"{what}: a number in [{low}, {high}{bracket}"
    return PlainValidator(
        check,
        json_schema_input_type=Annotated[float, Field(ge=low, **bound, description=described)],
    )


def _bool_field(what: str):
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise PydanticCustomError(
                "bool",
                "{what} must be true or false, got {got}",
                {"what": what, "got": _shown(value)},
            )
        return value

    return PlainValidator(check, json_schema_input_type=Annotated[bool, Field(description=what)])


Channels = Annotated[int, _int_field(1, "a channel count")]
Kernel = Annotated[int | Pair, _pair_field(1, "kernel")]
Stride = Annotated[int | Pair, _pair_field(1, "stride")]
Dilation = Annotated[int | Pair, _pair_field(1, "dilation")]
Padding = Annotated[int | Pair, _pair_field(0, "padding")]
Flag = Annotated[bool, _bool_field("this flag")]


def _conv_padding(value: Any) -> int | Pair | str:
    if value in ("same", "valid"):
        return value
    if isinstance(value, str):
        raise PydanticCustomError(
            "padding",
            "padding must be an integer, a [height, width] pair, 'same' or 'valid', got {got}",
            {"got": _shown(value)},
        )
    return _pair_field(0, "padding").func(value)


ConvPadding = Annotated[
    int | Pair | Literal["same", "valid"],
    PlainValidator(
        _conv_padding,
        json_schema_input_type=Annotated[
            _pair_type(0, "padding") | Literal["same", "valid"],
            Field(
                description="padding: an integer >= 0, a [height, width] pair, 'same' or 'valid'"
            ),
        ],
    ),
]
Activation = Literal[
    "relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "relu6", "hardswish", "hardsigmoid"
]  # fmt: skip


def pair(value: int | Pair) -> Pair:
    """An int-or-pair argument as (height, width)."""
    return value if isinstance(value, tuple) else (value, value)


class LayerSpec(BaseModel):
    """Common configuration of every layer model."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    kind: str
    #: fields whose values change spatial sizes or which modules a layer becomes;
    #: a spec parameter used in one is baked into generated source as its value
    structural_fields: ClassVar[frozenset[str]] = frozenset()
    #: fields that decide which modules the layer becomes: a definition's
    #: parameter used in one is fixed per generated class (one class per value)
    module_fields: ClassVar[frozenset[str]] = frozenset()
    #: fields that may be written as a mapping (``norm: {batch: {eps: ...}}``)
    mapping_fields: ClassVar[frozenset[str]] = frozenset()
