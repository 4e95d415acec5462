"""The JSON Schema (draft 2020-12) of the spec language, for editors: ``archc schema``.

Generated, never written by hand: the top level from
:class:`~archcompile.spec.schema.SpecDocument`, each layer kind's arguments
from its model in :data:`~archcompile.layers.LAYER_KINDS` (types, ranges and
descriptions come from the field helpers' ``json_schema_input_type``), the
item keys from :data:`~archcompile.spec.wiring.ITEM_KEYS`. A new layer kind
appears here with no edit to this module.

The schema must never refuse a spec the loader accepts, so what depends on
the rest of the document is checked only where it is known: a required
argument is required unless ``defaults`` gives it, and names of defined
blocks are checked only in a spec with no ``define:`` and no ``extends:``.
Each of those checks walks the document separately (:func:`_walk`).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from archcompile.ir import Output
from archcompile.layers import COMBINATORS, LAYER_KINDS, LayerSpec
from archcompile.spec.schema import NAME_PATTERN, TOP_LEVEL_KEYS, SpecDocument
from archcompile.spec.wiring import ITEM_KEYS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
NULL = {"type": "null"}


def _to(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


#: ``$name``: a parameter in scope, allowed wherever a layer takes a value
REFERENCE = {
    "type": "string",
    "pattern": r"^\$[A-Za-z_][A-Za-z0-9_]*$",
    "description": "a $name: a spec parameter, or a parameter of the enclosing define",
}

#: the keys an item may carry besides its kind (see archcompile.spec.wiring)
_ITEM_KEY_SCHEMAS = {
    "name": {
        "type": ["string", "null"],
        "pattern": NAME_PATTERN,
        "description": "the layer's attribute name; later items can read it with from:",
    },
    "from": {
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
        ],
        "description": "the value(s) this item reads: earlier blocks, named layers or 'input'",
    },
}

#: what a combinator takes, where its own items are (for :func:`_walk`), and
#: whether it may carry name: and from:
_COMBINATORS: dict[str, tuple[dict, str, bool]] = {
    "concat": (
        {
            "anyOf": [NULL, _to("branches")],
            "description": "named branches on the same input, joined on channels; "
            "without branches, joins the values named in from:",
        },
        "branches",
        True,
    ),
    "add": (
        {
            "anyOf": [NULL, _to("branches")],
            "description": "named branches on the same input, summed ([] is the identity); "
            "without branches, adds the values named in from:",
        },
        "branches",
        True,
    ),
    "repeat": (
        {
            "type": "object",
            "properties": {
                "times": {
                    "anyOf": [{"type": "integer", "minimum": 1}, _to("ref")],
                    "description": "how many copies",
                },
                "layers": {"type": "array", "items": _to("item")},
            },
            "required": ["times", "layers"],
            "additionalProperties": False,
            "description": "the layers, repeated times times in sequence",
        },
        "layers",
        False,
    ),
}


def _clean(node: Any) -> Any:
    """Pydantic's schema without its titles (field names, noise in an editor)."""
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    keyed = {"properties", "$defs", "patternProperties"}
    return {
        k: ({n: _clean(s) for n, s in v.items()} if k in keyed else _clean(v))
        for k, v in node.items()
        if k != "title" or not isinstance(v, str)
    }


def _referable(field: dict) -> dict:
    """A field's schema, or a ``$name`` in its place (also inside pairs)."""
    outer = {k: field.pop(k) for k in ("description", "default") if k in field}
    return {**outer, "anyOf": [_elements_referable(field), _to("ref")]}


def _elements_referable(node: dict) -> dict:
    node = dict(node)
    if "anyOf" in node:
        node["anyOf"] = [_elements_referable(s) for s in node["anyOf"]]
    if "prefixItems" in node:
        node["prefixItems"] = [{"anyOf": [s, _to("ref")]} for s in node["prefixItems"]]
    return node


def _layer(model: type[LayerSpec]) -> dict:
    """A kind's arguments. Required ones are checked by :func:`_needs`, since
    ``defaults`` may give them; no arguments at all (null) is allowed too."""
    generated = _clean(model.model_json_schema())
    properties = generated["properties"]
    properties.pop("kind")
    return {
        "type": ["object", "null"],
        "description": generated.get("description", ""),
        "properties": {name: _referable(s) for name, s in properties.items()},
        "additionalProperties": False,
    }


def _required(kind: str) -> list[str]:
    return LAYER_KINDS[kind].model_json_schema().get("required", [])


def _keyed_item(key: str, value: dict, wiring: bool = True) -> dict:
    """An item written ``{key: value}``, with ``name:`` and ``from:`` if ``wiring``."""
    keys = {k: _ITEM_KEY_SCHEMAS[k] for k in ITEM_KEYS} if wiring else {}
    return {
        "type": "object",
        "properties": {key: value, **keys},
        "required": [key],
        "additionalProperties": False,
    }


def _call() -> dict:
    """A use of a defined block: one other key, with positional (a list) or
    keyword (a mapping) arguments, any of which may be a ``$name``."""
    counts = []
    for n in range(len(ITEM_KEYS) + 1):
        for present in itertools.combinations(ITEM_KEYS, n):
            absent = [{"required": [k]} for k in ITEM_KEYS if k not in present]
            count = {"minProperties": n + 1, "maxProperties": n + 1}
            others = {"not": {"anyOf": absent}} if absent else {}
            counts.append({"required": list(present), **count, **others})
    return {
        "type": "object",
        "description": "a block from define: (or the standard library) and its arguments",
        "properties": {k: _ITEM_KEY_SCHEMAS[k] for k in ITEM_KEYS},
        "propertyNames": {"not": {"enum": [*LAYER_KINDS, *COMBINATORS]}},
        "additionalProperties": {"type": ["array", "object", "null"]},
        "oneOf": counts,
    }


def _item() -> dict:
    """One entry of a layer list."""
    bare = {
        "anyOf": [{"enum": list(LAYER_KINDS)}, {"type": "string", "pattern": NAME_PATTERN}],
        "description": "a layer kind or a defined block, without arguments",
    }
    layers = [_keyed_item(kind, _to(f"layer.{kind}")) for kind in LAYER_KINDS]
    combinators = [_keyed_item(c, *_COMBINATORS[c][::2]) for c in COMBINATORS]
    return {"anyOf": [bare, *layers, *combinators, _to("call")]}


def _walk(prefix: str, leaf: dict) -> dict[str, dict]:
    """$defs that apply ``leaf`` to every item of a document, at any depth:
    blocks, define's layers, branches of concat/add and repeat's layers."""
    item, body = f"{prefix}.item", f"{prefix}.body"
    nests = {
        "branches": {"additionalProperties": _to(body)},
        "layers": {"properties": {"layers": _to(body)}},
    }
    return {
        item: {
            "allOf": [leaf],
            "properties": {c: nests[_COMBINATORS[c][1]] for c in COMBINATORS},
        },
        body: {"items": _to(item), "allOf": [_to(item)]},
        prefix: {
            "properties": {
                "blocks": {"additionalProperties": _to(body)},
                "define": {"additionalProperties": {"properties": {"layers": _to(body)}}},
            }
        },
    }


def _needs(kind: str, field: str) -> tuple[dict, dict]:
    """Every ``kind`` layer gives ``field``, unless defaults (or a base spec) do."""
    name = f"needs.{kind}.{field}"
    leaf = {
        "not": {"const": kind},
        "properties": {kind: {"type": "object", "required": [field]}},
    }
    given = {"properties": {kind: {"required": [field]}}, "required": [kind]}
    condition = {
        "anyOf": [
            {"required": ["extends"]},
            {"properties": {"defaults": given}, "required": ["defaults"]},
        ]
    }
    return _walk(name, leaf), {"if": condition, "else": _to(name)}


def _known_kinds() -> tuple[dict, dict]:
    """Without define: or extends:, an item's kind is a layer kind, a
    combinator or a block of the standard library."""
    from archcompile.spec.loader import _stdlib

    known = [*LAYER_KINDS, *COMBINATORS, *_stdlib()[1]]
    leaf = {
        "if": {"type": "string"},
        "then": {"enum": known},
        "propertyNames": {"enum": [*known, *ITEM_KEYS]},
    }
    condition = {"anyOf": [{"required": ["extends"]}, {"required": ["define"]}]}
    return _walk("known", leaf), {"if": condition, "else": _to("known")}


def _keyed(node: dict) -> dict:
    """``patternProperties`` of one pattern as ``propertyNames`` (which also
    refuses the keys that do not match) and ``additionalProperties``."""
    ((pattern, value),) = node.pop("patternProperties").items()
    return {**node, "propertyNames": {"pattern": pattern}, "additionalProperties": value}


def _top_level(generated: dict) -> dict:
    """The top-level keys, from SpecDocument, with the parts it leaves untyped."""
    props = generated["properties"]
    props["params"] = _keyed(props["params"])
    props["define"] = _keyed(props["define"])
    blocks = {"anyOf": [{"type": "array", "items": _to("item"), "minItems": 1}, _to("item")]}
    props["blocks"] = {**_keyed(props["blocks"]), "additionalProperties": blocks}
    props["defaults"] |= {
        "properties": {kind: _to(f"layer.{kind}") for kind in LAYER_KINDS},
        "additionalProperties": False,
    }
    output = {"anyOf": [{"type": "string"}, _to("output")]}
    outputs = [NULL, output, {"type": "array", "items": output}]
    props["outputs"] = {**props["outputs"], "anyOf": outputs}
    extends = {"type": "string", "minLength": 1, "description": "a spec this one builds on"}
    extra = {"extends": extends}
    return props | {key: extra[key] for key in TOP_LEVEL_KEYS if key not in props}


def spec_schema() -> dict:
    """The whole schema, as a JSON-ready mapping."""
    generated = _clean(SpecDocument.model_json_schema())
    defs = generated.pop("$defs")
    defs["DefinitionDoc"]["properties"]["layers"]["items"] = _to("item")
    output = _clean(Output.model_json_schema())
    defs |= {"ref": REFERENCE, "item": _item(), "call": _call(), "output": output}
    defs["output"]["additionalProperties"] = False
    branch = {"anyOf": [NULL, {"type": "array", "items": _to("item")}, _to("item")]}
    defs["branches"] = {"type": "object", "minProperties": 2, "additionalProperties": branch}
    defs |= {f"layer.{kind}": _layer(model) for kind, model in LAYER_KINDS.items()}
    checks = [_known_kinds()]
    checks += [_needs(kind, field) for kind in LAYER_KINDS for field in _required(kind)]
    for walk, _ in checks:
        defs |= walk
    required = {"if": {"required": ["extends"]}, "else": {"required": generated["required"]}}
    return {
        "$schema": DIALECT,
        "title": "archc spec",
        "description": "A network spec for archc; see docs/spec-language.md.",
        "type": "object",
        "properties": _top_level(generated),
        "additionalProperties": False,
        "allOf": [required, *(check for _, check in checks)],
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as ``archc schema`` prints it: sorted keys, indent 2."""
    return json.dumps(spec_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
