"""Read a spec file: resolve ``extends``, apply ``--set`` overrides, validate.

The result is a :class:`Spec`: the resolved document, its source map, its
SHA-256 and the expanded IR :class:`~archcompile.ir.Graph`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
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

if TYPE_CHECKING:
    from archcompile.tree import Tree

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

    def tree(self) -> Tree:
        """The annotated tree, built once per spec and read by every command
        (shapes, build, diff, train, eval). Raises :class:`ShapeError`."""
        from archcompile.tree import annotate

        cache = self.__dict__  # a cache on a frozen dataclass
        if "_tree" not in cache:
            cache["_tree"] = annotate(self.graph, source=True)
        return cache["_tree"]


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
    *,
    values: Mapping[str, object] | None = None,
    allow_extends: Sequence[str | os.PathLike[str]] = (),
) -> Spec:
    """Load ``path`` and everything it extends; raise :class:`SpecError` with
    every problem found. ``overrides`` are ``--set`` texts (read as YAML);
    ``values`` are Python values from the API (taken as they are). ``extends``
    may name files in the spec's own folder tree, and in the folders of
    ``allow_extends`` (see :mod:`.confine`)."""
    path = Path(path)
    display = display_path(path)
    roots = Roots.of(path.parent, allow_extends)
    document, smap = _load_document(path, display, limits, (), roots)
    return _finish(display, document, smap, overrides, input_shape, limits, values)


def load_spec_text(
    text: str,
    display: str = "<spec>",
    overrides: dict[str, str] | None = None,
    input_shape: tuple[int, int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    base_dir: str | os.PathLike[str] = ".",
    *,
    values: Mapping[str, object] | None = None,
    allow_extends: Sequence[str | os.PathLike[str]] = (),
) -> Spec:
    """Like :func:`load_spec` for a spec held in memory (in ``base_dir``)."""
    document, smap = _parse_document(text, display, limits)
    roots = Roots.of(Path(base_dir), allow_extends)
    document, smap = _resolve_extends(
        document, smap, Path(base_dir) / display, display, limits, (), roots
    )
    return _finish(display, document, smap, overrides, input_shape, limits, values)


def load_spec_data(
    data: Mapping[str, Any],
    display: str = "<dict>",
    input_shape: tuple[int, int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    base_dir: str | os.PathLike[str] = ".",
    *,
    values: Mapping[str, object] | None = None,
) -> Spec:
    """Like :func:`load_spec_text` for a spec given as Python data. The data
    is written as YAML and read back, so that it passes exactly the checks a
    file does (plain data, names as keys, limits); as it has no lines,
    messages locate mistakes by their path in the data."""
    text = _data_as_yaml(data, display)
    try:
        document, smap = _parse_document(text, display, limits)
    except SpecError as exc:
        raise type(exc)([replace(d, line=None, column=None) for d in exc.diagnostics]) from None
    unlocated = Mark(display, None, None)
    smap.values = dict.fromkeys(smap.values, unlocated)
    smap.keys = dict.fromkeys(smap.keys, unlocated)
    roots = Roots.of(Path(base_dir), ())
    document, smap = _resolve_extends(
        document, smap, Path(base_dir) / display, display, limits, (), roots
    )
    return _finish(display, document, smap, None, input_shape, limits, values)


class _DataDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with tuples written as lists."""


_DataDumper.add_representer(tuple, yaml.SafeDumper.represent_list)


def _data_as_yaml(data: Mapping[str, Any], display: str) -> str:
    try:
        return yaml.dump(dict(data), Dumper=_DataDumper, sort_keys=False, allow_unicode=True)
    except yaml.representer.RepresenterError as exc:
        shown = type(exc.args[1]).__name__ if len(exc.args) > 1 else "an object"
        raise SpecError(
            Diagnostic(
                f"a spec holds plain data only (dict, list, str, int, float, bool), not {shown}",
                file=display,
            )
        ) from None
    except RecursionError:
        raise LimitError(Diagnostic("nesting too deep", file=display)) from None


def respecialize(
    spec: Spec,
    input_shape: tuple[int, int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    *,
    values: Mapping[str, object] | None = None,
) -> Spec:
    """``spec`` with more parameters set (or another input), validated as if
    they had been given when it was loaded; ``spec`` itself is left as it is."""
    smap = SourceMap()
    smap.values, smap.keys = dict(spec.source_map.values), dict(spec.source_map.keys)
    return _finish(spec.display, spec.document, smap, None, input_shape, limits, values)


def _finish(display, document, smap, overrides, input_shape, limits, values=None) -> Spec:
    document = copy.deepcopy(document)
    _apply_overrides(document, smap, overrides or {}, input_shape, values or {})
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
    whole_block = len(path) == 2 and path[0] == "blocks"  # a block is replaced, never merged
    if isinstance(base, dict) and isinstance(child, dict) and not whole_block:
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
    merged.quoted = {p for p in base_map.quoted if not below(p, False)}
    merged.quoted |= {p for p in child_map.quoted if below(p, False)}
    for path in child_keys:
        mark = child_map.keys.get(path)
        if mark:
            merged.keys[path] = mark
    return merged


def _apply_overrides(
    document, smap, overrides: dict[str, str], input_shape, values: Mapping[str, object]
) -> None:
    for key, text in overrides.items():
        _check_param(document, key, f"--set {key}=...")
        shown = text if len(text) <= 24 else text[:21] + "..."
        _set_param(document, smap, key, _override_text(key, text), f"--set {key}={shown}")
    for key, value in values.items():
        label = f"set={{{clipped_repr(key)}: {clipped_repr(value)}}}"
        if not isinstance(key, str):
            raise UsageError(Diagnostic(f"{label}: parameter names are strings"))
        _check_param(document, key, f"set={{{key!r}: ...}}")
        _set_param(document, smap, key, _override_value(value, label), label)
    if input_shape is not None:
        document["input"] = list(input_shape)


def _check_param(document, key: str, label: str) -> None:
    """Refuse a parameter the spec does not declare, suggesting the nearest."""
    params = document.get("params")
    if isinstance(params, dict) and key in params:
        return
    known = list(params) if isinstance(params, dict) else []
    hint = did_you_mean(key, known) or (
        "the spec's params are: " + ", ".join(known) if known else "the spec has no params"
    )
    raise UsageError(Diagnostic(f"{label}: the spec has no parameter {key!r}", hint=hint))


def _override_text(key: str, text: str) -> Any:
    """A ``--set`` value, parsed like a spec (plain data only, within limits);
    what is not YAML, or not YAML archc accepts, is taken as a string."""
    try:
        value = parse_yaml(text, f"--set {key}")[0] if text.strip() else None
    except SpecError:
        value = text
    if isinstance(value, (list, dict)) or value is None:
        raise UsageError(
            Diagnostic(f"--set {key}={text}: a parameter must be a number, boolean or string")
        )
    return value


def _override_value(value: object, label: str) -> Any:
    """A Python value from the API, taken as it is (``"10"`` stays a string):
    only what a spec could hold in ``params`` is accepted."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(Diagnostic(f"{label}: a parameter must be a finite number"))
    if not isinstance(value, (bool, int, float, str)):
        raise UsageError(
            Diagnostic(
                f"{label}: a parameter must be a number, boolean or string, "
                f"not {type(value).__name__}"
            )
        )
    return value


def _set_param(document, smap, key: str, value: Any, label: str) -> None:
    document["params"][key] = value
    # a mistake in this value is the option's, not the spec line it replaced
    smap.values[("params", key)] = Mark(label, None, None)


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
