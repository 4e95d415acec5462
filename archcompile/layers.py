"""Every layer kind of the spec language, declared once as a data-only model.

A kind is a pydantic model whose ``kind`` field is its name in YAML. The
models hold the validated arguments and nothing else: shape rules and counts
live in :mod:`archcompile.shapes`, the live builder in
:mod:`archcompile.backends.torch_build` and the source generator in
:mod:`archcompile.backends.codegen`, each a table keyed by kind.
``tests/test_registry.py`` fails when a kind is missing from any table.

To add a kind: declare its model here and list it in ``_MODELS``,
then add one entry to each table (see ``docs/architecture.md``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator
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
Activation = Literal["relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh"]
Norm = Literal["batch"]


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


class Conv(LayerSpec):
    """2-D convolution, optionally followed by a norm and an activation."""

    kind: Literal["conv"] = "conv"
    out: Channels
    kernel: Kernel
    stride: Stride = 1
    padding: ConvPadding = 0
    dilation: Dilation = 1
    groups: Channels = 1
    bias: Flag | None = Field(
        None, description="add a bias; by default, a bias unless a norm follows"
    )
    activation: Activation | None = Field(None, description="an activation applied after the norm")
    norm: Norm | None = Field(None, description="a norm applied after the convolution")
    structural_fields: ClassVar[frozenset[str]] = frozenset(
        {"kernel", "stride", "padding", "dilation", "activation", "norm"}
    )
    module_fields: ClassVar[frozenset[str]] = frozenset({"activation", "norm"})

    @model_validator(mode="after")
    def _consistent(self) -> Conv:
        if self.padding == "same" and pair(self.stride) != (1, 1):
            raise PydanticCustomError(
                "same",
                "padding 'same' needs stride 1 (got stride {s})",
                {"s": _shown(self.stride)},
            )
        if self.out % self.groups:
            raise PydanticCustomError(
                "groups",
                "groups ({g}) must divide the output channels ({o})",
                {"g": self.groups, "o": self.out},
            )
        return self

    @property
    def has_bias(self) -> bool:
        return self.norm is None if self.bias is None else self.bias


class _Pool(LayerSpec):
    kernel: Kernel
    stride: Stride | None = Field(
        None, description="stride; by default the kernel size, as in torch"
    )
    padding: Padding = 0
    ceil_mode: Flag = Field(False, description="round the output size up instead of down")
    structural_fields: ClassVar[frozenset[str]] = frozenset(
        {"kernel", "stride", "padding", "ceil_mode"}
    )

    @model_validator(mode="after")
    def _padding_fits(self) -> _Pool:
        for k, p in zip(pair(self.kernel), pair(self.padding)):
            if 2 * p > k:
                raise PydanticCustomError(
                    "padding",
                    "pool padding {p} is more than half the kernel {k}",
                    {"p": _shown(self.padding), "k": _shown(self.kernel)},
                )
        return self

    @property
    def effective_stride(self) -> int | Pair:
        return self.kernel if self.stride is None else self.stride


class MaxPool(_Pool):
    """2-D max pooling."""

    kind: Literal["maxpool"] = "maxpool"


class AvgPool(_Pool):
    """2-D average pooling."""

    kind: Literal["avgpool"] = "avgpool"
    count_include_pad: Flag = Field(True, description="count the zero padding in the averages")


class GlobalAvgPool(LayerSpec):
    """Average over the whole spatial extent: [N, C, H, W] -> [N, C, 1, 1]."""

    kind: Literal["global_avgpool"] = "global_avgpool"


class AdaptiveAvgPool(LayerSpec):
    """Average pooling to a fixed output size: [N, C, H, W] -> [N, C, h, w]."""

    kind: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    size: Annotated[int | Pair, _pair_field(1, "size")]
    structural_fields: ClassVar[frozenset[str]] = frozenset({"size"})


class BatchNorm(LayerSpec):
    """Batch normalization over channels (2-D or 1-D input)."""

    kind: Literal["batchnorm"] = "batchnorm"
    eps: Annotated[float, _float_field(0.0, 1.0, "eps")] = 1e-5
    momentum: Annotated[float, _float_field(0.0, 1.0, "momentum")] = 0.1


class LRN(LayerSpec):
    """Local response normalization across channels, as in the GoogLeNet paper."""

    kind: Literal["lrn"] = "lrn"
    size: Channels = 5
    alpha: Annotated[float, _float_field(0.0, 1e6, "alpha")] = 1e-4
    beta: Annotated[float, _float_field(0.0, 1e6, "beta")] = 0.75
    k: Annotated[float, _float_field(0.0, 1e6, "k")] = 1.0


class ReLU(LayerSpec):
    """max(x, 0)."""

    kind: Literal["relu"] = "relu"


class LeakyReLU(LayerSpec):
    """max(x, 0) + negative_slope * min(x, 0)."""

    kind: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: Annotated[float, _float_field(0.0, 1.0, "negative_slope")] = 0.01


class GELU(LayerSpec):
    """Gaussian error linear unit."""

    kind: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = Field(
        "none", description="'tanh': the tanh approximation (GPT-2, MLP-Mixer in JAX)"
    )


class SiLU(LayerSpec):
    """x * sigmoid(x) (swish)."""

    kind: Literal["silu"] = "silu"


class Sigmoid(LayerSpec):
    """The logistic function."""

    kind: Literal["sigmoid"] = "sigmoid"


class Tanh(LayerSpec):
    """Hyperbolic tangent."""

    kind: Literal["tanh"] = "tanh"


class Dropout(LayerSpec):
    """Zeroes elements with probability p during training."""

    kind: Literal["dropout"] = "dropout"
    p: Annotated[float, _float_field(0.0, 1.0, "p", high_open=True)] = 0.5


class Flatten(LayerSpec):
    """[N, C, H, W] -> [N, C*H*W]."""

    kind: Literal["flatten"] = "flatten"


class Linear(LayerSpec):
    """Fully connected layer on [N, features] or on the last axis of tokens [N, L, D]."""

    kind: Literal["linear"] = "linear"
    out: Channels
    bias: Flag = Field(True, description="add a bias")
    activation: Activation | None = Field(None, description="an activation applied to the output")
    structural_fields: ClassVar[frozenset[str]] = frozenset({"activation"})
    module_fields: ClassVar[frozenset[str]] = frozenset({"activation"})


from archcompile.layers_tokens import TOKEN_MODELS

_MODELS: tuple[type[LayerSpec], ...] = (
    Conv,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    AdaptiveAvgPool,
    BatchNorm,
    LRN,
    ReLU,
    LeakyReLU,
    GELU,
    SiLU,
    Sigmoid,
    Tanh,
    Dropout,
    Flatten,
    Linear,
    *TOKEN_MODELS,
)

#: the registry: YAML name of each kind -> its model
LAYER_KINDS: dict[str, type[LayerSpec]] = {m.model_fields["kind"].default: m for m in _MODELS}

#: any layer, discriminated by its ``kind`` (for typing IR fields)
Layer = Annotated[Union[_MODELS], Field(discriminator="kind")]  # noqa: UP007

#: structural words of the language that are not layers
COMBINATORS: tuple[str, ...] = ("concat", "add", "repeat")
