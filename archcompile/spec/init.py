"""``init:``: how the weights and biases of convolutions and linear layers start.

Pure Python: this module turns the spec's ``init:`` into :class:`InitRule`s of
the IR, which the live backend runs and the code generator writes out, so that
both make the same calls in the same order. Syntax (docs/spec-language.md)::

    init: glorot_uniform                 # every conv and linear weight
    init: {normal: {std: 0.01}}          # the same, with arguments
    init:
      default: glorot_uniform            # weights of the kinds not named below
      conv: {kaiming_normal: {mode: fan_out, nonlinearity: relu}}
      linear: {normal: {std: 0.01}}
      bias: zeros                        # every conv and linear bias
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archcompile.errors import Diagnostic, clipped_repr
from archcompile.ir import InitRule
from archcompile.spec.diagnose import validation_diagnostics
from archcompile.spec.names import did_you_mean
from archcompile.spec.source import SourceMap, SpecPath

#: layer kinds whose modules ``init:`` initializes -> their ``torch.nn`` class
KINDS = {"conv": "Conv2d", "linear": "Linear"}
#: the keys of ``init:``
KEYS = ("default", "bias", *KINDS)
TORCH = "torch"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _NoArgs(_Args):
    pass


class _Kaiming(_Args):
    mode: Literal["fan_in", "fan_out"] = Field("fan_in", description="keep the variance of")
    nonlinearity: Literal["relu", "leaky_relu", "linear", "tanh", "sigmoid"] = Field(
        "relu", description="the activation that follows, for the gain"
    )


class _Normal(_Args):
    std: float = Field(gt=0, allow_inf_nan=False, description="standard deviation")
    mean: float = Field(0.0, allow_inf_nan=False)


class _TruncNormal(_Args):
    std: float = Field(
        gt=0, allow_inf_nan=False, description="standard deviation; cut at 2 std, as TensorFlow"
    )


#: name -> (its arguments, the ``torch.nn.init`` function; None: torch's default)
INITIALIZERS: dict[str, tuple[type[_Args], str | None]] = {
    TORCH: (_NoArgs, None),
    "glorot_uniform": (_NoArgs, "xavier_uniform_"),
    "glorot_normal": (_NoArgs, "xavier_normal_"),
    "kaiming_uniform": (_Kaiming, "kaiming_uniform_"),
    "kaiming_normal": (_Kaiming, "kaiming_normal_"),
    "zeros": (_NoArgs, "zeros_"),
    "normal": (_Normal, "normal_"),
    "trunc_normal": (_TruncNormal, "trunc_normal_"),
}
#: a bias has no fan-in and fan-out
BIAS_INITIALIZERS = (TORCH, "zeros", "normal", "trunc_normal")

_SHAPE_HINT = "write a name (glorot_uniform) or one name with its arguments ({normal: {std: 0.01}})"

Call = tuple[str, tuple[tuple[str, Any], ...]] | None


def _kwargs(name: str, args: _Args) -> tuple[tuple[str, Any], ...]:
    if isinstance(args, _Kaiming):
        return (("mode", args.mode), ("nonlinearity", args.nonlinearity))
    if isinstance(args, _Normal):
        return ((("mean", args.mean),) if args.mean else ()) + (("std", args.std),)
    if isinstance(args, _TruncNormal):
        return (("std", args.std), ("a", -2 * args.std), ("b", 2 * args.std))
    return ()


def _initializer(value: Any, smap: SourceMap, path: SpecPath, out: list[Diagnostic]) -> Call:
    """One initializer: None for torch's default, else (function, kwargs)."""
    if isinstance(value, str):
        name, args, args_path = value, {}, path
    elif isinstance(value, dict) and len(value) == 1:
        ((name, args),) = value.items()
        args_path = path + (name,)
        if args is None:
            args = {}
    else:
        out.append(
            smap.diagnostic(path, f"not an initializer: {clipped_repr(value)}", hint=_SHAPE_HINT)
        )
        return None
    if name not in INITIALIZERS:
        hint = did_you_mean(str(name), INITIALIZERS) or "expected one of: " + ", ".join(
            INITIALIZERS
        )
        out.append(
            smap.diagnostic(
                path if isinstance(value, str) else args_path,
                f"unknown initializer {clipped_repr(name)}",
                hint=hint,
                key=not isinstance(value, str),
            )
        )
        return None
    if path[-1] == "bias" and name not in BIAS_INITIALIZERS:
        out.append(
            smap.diagnostic(
                path,
                f"a bias cannot start from {name} (it has no fan-in and fan-out)",
                hint="expected one of: " + ", ".join(BIAS_INITIALIZERS),
            )
        )
        return None
    model, fn = INITIALIZERS[name]
    if not isinstance(args, dict):
        out.append(
            smap.diagnostic(args_path, f"{name} takes a mapping of arguments", hint=_SHAPE_HINT)
        )
        return None
    try:
        parsed = model.model_validate(args)
    except ValidationError as exc:
        out += validation_diagnostics(exc, smap, args_path, {(): tuple(model.model_fields)})
        return None
    return None if fn is None else (fn, _kwargs(name, parsed))


def init_rules(raw: Any, smap: SourceMap) -> tuple[tuple[InitRule, ...], list[Diagnostic]]:
    """The IR rules of ``init:`` (in the order both backends apply them), and
    the problems found in it, each located."""
    out: list[Diagnostic] = []
    if raw is None:
        return (), out
    # the short form: one initializer for every weight
    short = isinstance(raw, str) or (
        isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in INITIALIZERS
    )
    entries = {"default": raw} if short else raw
    if not isinstance(entries, dict):
        out.append(smap.diagnostic(("init",), f"not an initializer: {clipped_repr(raw)}"))
        return (), out
    calls: dict[str, Call] = {}
    for key, value in entries.items():
        if key not in KEYS:
            hint = did_you_mean(str(key), KEYS) or "expected one of: " + ", ".join(KEYS)
            out.append(
                smap.diagnostic(("init", key), f"unknown key {key!r} in init", hint=hint, key=True)
            )
            continue
        path: SpecPath = ("init",) if short else ("init", key)
        calls[key] = _initializer(value, smap, path, out)
    return _rules(calls), out


def _rules(calls: dict[str, Call]) -> tuple[InitRule, ...]:
    """Weights first (kinds with the same call share one rule), then biases."""
    weights: dict[tuple[str, tuple[tuple[str, Any], ...]], list[str]] = {}
    for kind, ctor in KINDS.items():
        call = calls[kind] if kind in calls else calls.get("default")
        if call is not None:
            weights.setdefault(call, []).append(ctor)
    rules = [
        InitRule(classes=tuple(ctors), param="weight", fn=fn, kwargs=kwargs)
        for (fn, kwargs), ctors in weights.items()
    ]
    bias = calls.get("bias")
    if bias is not None:
        rules.append(
            InitRule(classes=tuple(KINDS.values()), param="bias", fn=bias[0], kwargs=bias[1])
        )
    return tuple(rules)


def initializer_schema() -> dict:
    """JSON Schema of one initializer (``$defs.initializer`` of ``archc schema``)."""
    one = []
    for name, (model, _) in INITIALIZERS.items():
        one.append({"const": name})
        schema = model.model_json_schema()
        args = {
            "type": "object",
            "properties": schema.get("properties", {}),
            "additionalProperties": False,
        }
        if schema.get("required"):
            args["required"] = schema["required"]
        else:
            args = {"anyOf": [{"type": "null"}, args]}
        one.append(
            {
                "type": "object",
                "properties": {name: args},
                "required": [name],
                "additionalProperties": False,
            }
        )
    return {"anyOf": one}


def init_schema(initializer: dict) -> dict:
    """JSON Schema of ``init:``; ``initializer`` refers to one initializer."""
    return {
        "description": "how conv and linear weights and biases start (default: torch's)",
        "anyOf": [
            {"type": "null"},
            initializer,
            {
                "type": "object",
                "properties": {key: initializer for key in KEYS},
                "additionalProperties": False,
            },
        ],
    }
