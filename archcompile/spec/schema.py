"""Pydantic models of a spec file's top-level structure.

These validate the document's skeleton (keys, names, input, params); the
layer lists are checked by :mod:`archcompile.spec.expand`, which knows the
scope of ``$names`` and the composite blocks in use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

from archcompile.layers import _integer
from archcompile.limits import MAX_INT
from archcompile.spec.names import (
    attribute_problem,
    definition_problem,
    identifier_problem,
    variable_problem,
)

#: what a name looks like in JSON Schema (``archc schema``); the checks in
#: :mod:`archcompile.spec.names` refuse more (keywords, reserved names)
NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Text = Annotated[str, PlainValidator(lambda v: _text(v), json_schema_input_type=str)]


def _name_check(problem_of):
    def check(value: Any) -> str:
        problem = problem_of(value)
        if problem:
            raise PydanticCustomError("name", problem)
        return value

    return PlainValidator(check, json_schema_input_type=Name)


ClassName = Annotated[str, _name_check(lambda v: identifier_problem(v, "the spec"))]
BlockName = Annotated[str, _name_check(lambda v: attribute_problem(v, "block"))]
ParamName = Annotated[str, _name_check(lambda v: variable_problem(v, "parameter"))]
DefineName = Annotated[str, _name_check(definition_problem)]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("text", "must be text, got {got}", {"got": repr(value)})
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, (list, dict)) or value is None:
        raise PydanticCustomError(
            "scalar",
            "a parameter must be a number, boolean or string, got {got}",
            {"got": repr(value)},
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return _integer(value, -(2**31), "a parameter")
    return value


_Scalar = Annotated[
    Any,
    PlainValidator(
        _scalar,
        json_schema_input_type=Annotated[
            int | float | bool | str, Field(description="a number, boolean or string")
        ],
    ),
]
_Size = Annotated[int, Field(ge=1, le=MAX_INT)]


def _input(value: Any) -> tuple[int, int, int]:
    if not isinstance(value, list) or len(value) != 3:
        raise PydanticCustomError(
            "input",
            "input must be [channels, height, width], got {got}",
            {"got": repr(value)},
        )
    c, h, w = (_integer(v, 1, "an input size") for v in value)
    return (c, h, w)


class ParamList(tuple):
    """A definition's parameter names (a nested tuple is one destructured
    argument), with the default values some of them take (``defaults``)."""

    defaults: dict[str, Any]

    def __new__(cls, names: Any = (), defaults: dict[str, Any] | None = None) -> Self:
        self = super().__new__(cls, names)
        self.defaults = dict(defaults or {})
        return self


def _param_entry(item: Any) -> tuple[Any, bool, Any]:
    """(name or group, has a default, the default) of one entry of params."""
    if isinstance(item, dict):
        if len(item) != 1:
            raise PydanticCustomError(
                "params",
                "a parameter with a default is written {{name: value}}, one per entry; got {got}",
                {"got": repr(item)},
            )
        ((name, default),) = item.items()
        if isinstance(default, (dict, list)):
            raise PydanticCustomError(
                "params",
                "the default of parameter {name} must be a single value, got {got}",
                {"name": repr(name), "got": repr(default)},
            )
        return name, True, default
    return item, False, None


def _params_list(value: Any) -> tuple[Any, ...]:
    """``[c1, [c2_reduce, c2], {stride: 1}]``: names, lists of names (one level),
    and names with a default value."""
    if not isinstance(value, list):
        raise PydanticCustomError(
            "params", "params must be a list of names, got {got}", {"got": repr(value)}
        )
    out: list[Any] = []
    defaults: dict[str, Any] = {}
    seen: set[str] = set()
    for item in value:
        item, has_default, default = _param_entry(item)
        group = item if isinstance(item, list) else [item]
        if not group:
            raise PydanticCustomError("params", "an empty group [] in params")
        for name in group:
            if isinstance(name, list):
                raise PydanticCustomError("params", "params nest one level at most: [a, [b, c]]")
            problem = variable_problem(name, "parameter")
            if problem:
                raise PydanticCustomError("name", problem)
            if name in seen:
                raise PydanticCustomError(
                    "params", "parameter {name} is named twice", {"name": repr(name)}
                )
            seen.add(name)
        if has_default:
            defaults[item] = default
        elif defaults:
            raise PydanticCustomError(
                "params",
                "parameter {name} has no default but follows one that has",
                {"name": repr(group[-1])},
            )
        out.append(tuple(group) if isinstance(item, list) else item)
    return ParamList(out, defaults)


_Params = Annotated[
    tuple[Any, ...],
    PlainValidator(
        _params_list,
        json_schema_input_type=Annotated[
            list[
                Name
                | Annotated[list[Name], Field(min_length=1)]
                | Annotated[dict[Name, Any], Field(min_length=1, max_length=1)]
            ],
            Field(
                description="parameter names; a list [a, b] takes one argument destructured; "
                "{name: value} gives a default"
            ),
        ],
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _version(value: Any) -> Any:
    """``archc: true`` equals 1 in Python; a boolean is not a format version."""
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1", {"expected": "1"})
    return value


class DefinitionDoc(_Strict):
    """One entry of ``define:``: a composite block written in the spec language."""

    params: _Params = ()
    doc: Text | None = Field(None, description="what the block is; its class docstring")
    layers: list[Any] = Field(min_length=1, description="the block's layers, in order")


class SpecDocument(_Strict):
    """A whole spec after ``extends`` is resolved."""

    archc: Annotated[Literal[1], BeforeValidator(_version)] = Field(
        description="the spec format version"
    )
    name: ClassName = Field(description="the name of the generated model class")
    description: Text | None = Field(None, description="what the network is; kept in the output")
    input: Annotated[
        tuple[int, int, int],
        PlainValidator(
            _input,
            json_schema_input_type=Annotated[
                tuple[_Size, _Size, _Size], Field(description="[channels, height, width]")
            ],
        ),
    ]
    params: dict[ParamName, _Scalar] = Field(
        default_factory=dict,
        description="named values, used as $name and overridable with --set name=value",
    )
    defaults: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict, description="arguments given to every layer of a kind"
    )
    #: checked by :mod:`archcompile.spec.init` (located, with did-you-mean hints)
    init: Any = Field(None, description="how conv and linear weights and biases start")
    define: dict[DefineName, DefinitionDoc] = Field(
        default_factory=dict, description="composite blocks, used like layer kinds"
    )
    #: a list of layers (an ``nn.Sequential``), or one item (that module itself)
    blocks: dict[BlockName, Any] = Field(
        min_length=1,
        description="the network in order: each block a list of layers, or one item",
    )
    #: block names the model returns (checked by the expander); default: the last
    outputs: Any = Field(
        None, description="the blocks the model returns; by default the last block"
    )


class LibraryDocument(_Strict):
    """A file of definitions only, such as the standard library."""

    archc: Literal[1]
    define: dict[DefineName, DefinitionDoc]


#: top-level keys a user may write (``extends`` is consumed by the loader)
TOP_LEVEL_KEYS = (*SpecDocument.model_fields, "extends")
