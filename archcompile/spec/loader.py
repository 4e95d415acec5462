"""Read a spec file: resolve ``extends``, apply ``--set`` overrides, validate.

The result is a :class:`Spec`: the resolved document, its source map, its
SHA-256 and the expanded IR :class:`~archcompile.ir.Graph`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archcompile.errors import Diagnostic, LimitError, SpecError, UsageError, clipped_repr
from archcompile.ir import Graph
from archcompile.limits import DEFAULT_LIMITS, Limits
from archcompile.spec.confine import Roots
from archcompile.spec.diagnose import validation_diagnostics
from archcompile.spec.expand import expand
from archcompile.spec.names import did_you_mean
from archcompile.spec.schema import (
    TOP_LEVEL_KEYS,
    DefinitionDoc,
    LibraryDocument,
    SpecDocument,
)
from archcompile.spec.scope import DefinitionSource
from archcompile.spec.source import Mark, SourceMap, SpecPath, parse_yaml, read_text

STDLIB_NAME = "archcompile/stdlib/blocks.yaml"


@dataclass(frozen=True)
class Spec:
    """A loaded, validated and expanded spec."""

    display: str  # the path as the user named it (for messages and headers)
    document: dict[str, Any]  # resolved: extends merged, overrides applied
    source_map: SourceMap
    graph: Graph
    sha256: str  # of the resolved document and the library blocks it uses

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def stem(self) -> str:
        return Path(self.display).stem


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as messages and generated headers show it: as the user wrote it
    when relative, relative to the working directory when below it, else just
    its name (never an absolute path, which would differ between machines)."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


def load_spec(
    path: str | os.PathLike[str],
    overrides: dict[str, str] | None = None,
    input_shape: tuple[int, int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    allow_extends: Sequence[str | os.PathLike[str]] = (),
) -> Spec:
    """Load ``path`` and everything it extends; raise :class:`SpecError` with
    every problem found. ``extends`` may name files in the spec's own folder
    tree, and in the folders of ``allow_extends`` (see :mod:`.confine`)."""
    path = Path(path)
    display = display_path(path)
    roots = Roots.of(path.parent, allow_extends)
    document, smap = _load_document(path, display, limits, (), roots)
    return _finish(display, document, smap, overrides, input_shape, limits)


def load_spec_text(
    text: str,
    display: str = "<spec>",
    overrides: dict[str, str] | None = None,
    input_shape: tuple[int, int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    base_dir: str | os.PathLike[str] = ".",
    allow_extends: Sequence[str | os.PathLike[str]] = (),
) -> Spec:
    """Like :func:`load_spec` for a spec held in memory (in ``base_dir``)."""
    document, smap = _parse_document(text, display, limits)
    roots = Roots.of(Path(base_dir), allow_extends)
    document, smap = _resolve_extends(
        document, smap, Path(base_dir) / display, display, limits, (), roots
    )
    return _finish(display, document, smap, overrides, input_shape, limits)


def _finish(display, document, smap, overrides, input_shape, limits) -> Spec:
    document = copy.deepcopy(document)
    _apply_overrides(document, smap, overrides or {}, input_shape)
    try:
        validated = SpecDocument.model_validate(document)
    except ValidationError as exc:
        keys = {(): TOP_LEVEL_KEYS}
        for name in document.get("define", {}) if isinstance(document.get("define"), dict) else {}:
            keys[("define", name)] = tuple(DefinitionDoc.model_fields)
        raise SpecError(validation_diagnostics(exc, smap, (), keys)) from None
    raw_library, library_definitions = _stdlib()
    definitions = dict(library_definitions)
    for name, definition in validated.define.items():
        definitions[name] = DefinitionSource(name, definition, smap, ("define", name))
    graph, used = expand(validated, smap, definitions, limits)
    library = {name: raw_library[name] for name in sorted(used) if name not in validated.define}
    canonical = json.dumps(
        {"spec": document, "library": library}, sort_keys=True, ensure_ascii=True
    )
    return Spec(display, document, smap, graph, hashlib.sha256(canonical.encode()).hexdigest())


def _parse_document(
    text: str, display: str, limits: Limits, quote: bool = True
) -> tuple[dict[str, Any], SourceMap]:
    document, smap = parse_yaml(text, display, limits)
    if not isinstance(document, dict):
        shown = "a list" if isinstance(document, list) else "a scalar"
        if quote and not isinstance(document, list):
            shown = f"the scalar {clipped_repr(document)}"
        raise SpecError(
            smap.diagnostic(
                (),
                f"a spec is a mapping of keys (archc, name, input, blocks, ...), not {shown}",
            )
        )
    return document, smap


def _load_document(
    path: Path,
    display: str,
    limits: Limits,
    chain: tuple[Path, ...],
    roots: Roots,
) -> tuple[dict[str, Any], SourceMap]:
    text = read_text(path, display, limits)
    # the content of an extended file is not quoted until it is known to be a spec
    document, smap = _parse_document(text, display, limits, quote=not chain)
    return _resolve_extends(document, smap, path, display, limits, chain, roots)


def _resolve_extends(document, smap, path: Path, display: str, limits: Limits, chain, roots):
    if "extends" not in document:
        return document, smap
    target = document.pop("extends")

    def fail(message: str, hint: str | None = None) -> SpecError:
        return SpecError(smap.diagnostic(("extends",), message, hint=hint))

    here = path.resolve()
    chain = (*chain, here)
    if len(chain) > limits.max_extends_depth:
        raise LimitError(
            smap.diagnostic(("extends",), f"more than {limits.max_extends_depth} levels of extends")
        )
    base_path = roots.resolve(target, path.parent, fail)
    base_display = (Path(display).parent / target).as_posix()
    if base_path in chain:
        names = " -> ".join(p.name for p in (*chain, base_path))
        raise fail(f"extends cycle: {names}")
    base, base_map = _load_document(base_path, os.path.normpath(base_display), limits, chain, roots)
    replaced: list[SpecPath] = []
    child_keys: list[SpecPath] = []
    merged = _merge(base, document, (), replaced, child_keys)
    return merged, _merged_map(base_map, smap, set(replaced), child_keys)


def _merge(
    base: Any, child: Any, path: SpecPath, replaced: list[SpecPath], child_keys: list[SpecPath]
) -> Any:
    """Child values win; mappings merge key by key, everything else is replaced.
    Records the paths the child replaced and the keys it wrote."""
    if isinstance(base, dict) and isinstance(child, dict):
        result = dict(base)
        for key, value in child.items():
            sub = path + (key,)
            child_keys.append(sub)
            if key in base:
                result[key] = _merge(base[key], value, sub, replaced, child_keys)
            else:
                result[key] = value
                replaced.append(sub)
        return result
    replaced.append(path)
    return child


def _merged_map(
    base_map: SourceMap, child_map: SourceMap, replaced: set[SpecPath], child_keys: list[SpecPath]
) -> SourceMap:
    """Marks of a merged document: the child's where it replaced a value (at
    and below that path), the base's elsewhere, and the child's for every key
    it wrote. One pass over each map: a spec with thousands of keys merges in
    linear time."""

    def below(path: SpecPath, strict: bool) -> bool:
        return any(path[:end] in replaced for end in range(len(path) + (not strict)))

    merged = SourceMap()
    merged.values = {p: m for p, m in base_map.values.items() if not below(p, False)}
    merged.keys = {p: m for p, m in base_map.keys.items() if not below(p, True)}
    merged.values.update({p: m for p, m in child_map.values.items() if below(p, False)})
    merged.keys.update({p: m for p, m in child_map.keys.items() if below(p, True)})
    for path in child_keys:
        mark = child_map.keys.get(path)
        if mark:
            merged.keys[path] = mark
    return merged


def _apply_overrides(document, smap, overrides: dict[str, str], input_shape) -> None:
    params = document.get("params")
    for key, text in overrides.items():
        if not isinstance(params, dict) or key not in params:
            known = list(params) if isinstance(params, dict) else []
            hint = did_you_mean(key, known) or (
                "the spec's params are: " + ", ".join(known) if known else "the spec has no params"
            )
            raise UsageError(
                Diagnostic(f"--set {key}=...: the spec has no parameter {key!r}", hint=hint)
            )
        try:
            # parsed like a spec (plain data only, within limits); what is not
            # YAML, or not YAML archc accepts, is taken as a string
            value = parse_yaml(text, f"--set {key}")[0] if text.strip() else None
        except SpecError:
            value = text
        if isinstance(value, (list, dict)) or value is None:
            raise UsageError(
                Diagnostic(f"--set {key}={text}: a parameter must be a number, boolean or string")
            )
        params[key] = value
        # a mistake in this value is the option's, not the spec line it replaced
        shown = text if len(text) <= 24 else text[:21] + "..."
        smap.values[("params", key)] = Mark(f"--set {key}={shown}", None, None)
    if input_shape is not None:
        document["input"] = list(input_shape)


@functools.cache
def _stdlib() -> tuple[dict[str, Any], dict[str, DefinitionSource]]:
    """The standard library's raw ``define`` mapping (hashed into specs that
    use it) and its validated definitions, read once per process."""
    text = resources.files("archcompile").joinpath("stdlib/blocks.yaml").read_text("utf-8")
    document, smap = parse_yaml(text, STDLIB_NAME)
    library = LibraryDocument.model_validate(document)
    definitions = {
        name: DefinitionSource(name, definition, smap, ("define", name))
        for name, definition in library.define.items()
    }
    return document["define"], definitions


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``["num_classes=100"]`` -> ``{"num_classes": "100"}`` (for the CLI)."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(Diagnostic(f"--set expects key=value, got {pair!r}"))
        result[key.strip()] = value.strip()
    return result


def parse_input(text: str) -> tuple[int, int, int]:
    """``"3x64x64"`` -> ``(3, 64, 64)`` (for the CLI)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1 or max(values) > 2**31 - 1:
        raise UsageError(Diagnostic(f"--input expects CxHxW with positive integers, got {text!r}"))
    return values  # type: ignore[return-value]
