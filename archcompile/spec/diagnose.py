"""Turn pydantic validation errors into located archc diagnostics."""

from __future__ import annotations

from pydantic import ValidationError

from archcompile.errors import Diagnostic, clipped_repr
from archcompile.spec.names import closest, did_you_mean
from archcompile.spec.source import SourceMap, SpecPath

_GENERIC = {
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be text",
    "too_short": "must not be empty",
    "bool_type": "must be true or false",
}


def validation_diagnostics(
    exc: ValidationError,
    smap: SourceMap,
    prefix: SpecPath,
    allowed_keys: dict[SpecPath, tuple[str, ...]] | None = None,
    where: dict[str, tuple[SourceMap, SpecPath]] | None = None,
) -> list[Diagnostic]:
    """One diagnostic per pydantic error.

    ``allowed_keys`` maps a (relative) location to the keys valid there, for
    did-you-mean hints. ``where`` maps a top-level field to the place its value
    was written when it was not written at ``prefix`` (defaults, arguments).
    """
    errors = exc.errors(include_url=False)
    # a misspelt required key is reported once, as the unknown key with its
    # did-you-mean hint, not also as the key it should have been
    misspelt = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = tuple(error["loc"])
            match = closest(str(loc[-1]), (allowed_keys or {}).get(loc[:-1], ()))
            if match:
                misspelt.add(loc[:-1] + (match,))
    diagnostics = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "missing" and loc in misspelt:
            continue
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        kind = error["type"]
        target_map, path = smap, prefix + loc
        if where and loc and loc[0] in where:
            target_map, base = where[loc[0]]
            path = base + loc[1:]
        hint = None
        if kind == "extra_forbidden":
            name = str(loc[-1])
            message = f"unknown key {name!r}"
            choices = (allowed_keys or {}).get(loc[:-1], ())
            hint = did_you_mean(name, choices)
            if hint is None and choices:
                hint = "expected one of: " + ", ".join(choices)
            is_key = True
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}"
            path = path[:-1]
        elif kind == "literal_error":
            expected = error.get("ctx", {}).get("expected", "")
            message = f"{clipped_repr(error['input'])} is not allowed here; expected {expected}"
        elif kind in _GENERIC:
            message = f"{_GENERIC[kind]}, got {clipped_repr(error['input'])}"
        else:
            message = error["msg"]
        diagnostics.append(target_map.diagnostic(path, message, hint=hint, key=is_key))
    return diagnostics
