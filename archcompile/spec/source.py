"""Safe, located YAML reading.

PyYAML's ``safe_load`` forgets where each value came from and silently keeps the
last of two duplicate keys. This module composes the YAML node tree with the
safe loader, refuses every tag that is not plain data, enforces the limits of
:mod:`archcompile.limits`, and returns plain Python values together with a
:class:`SourceMap` from spec paths (``("blocks", "block3", 1, "inception")``)
to file, line and column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archcompile.errors import Diagnostic, LimitError, SpecError
from archcompile.limits import DEFAULT_LIMITS, Limits

SpecPath = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
}


@dataclass(frozen=True)
class Mark:
    """A position in a spec file; line and column are 1-based."""

    file: str
    line: int
    column: int


def format_path(path: SpecPath) -> str:
    """``("blocks", "block3", 1, "inception")`` -> ``blocks.block3[1].inception``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class SourceMap:
    """Where each value and each mapping key of a document was written."""

    def __init__(self) -> None:
        self.values: dict[SpecPath, Mark] = {}
        self.keys: dict[SpecPath, Mark] = {}

    def value(self, path: SpecPath) -> Mark | None:
        """The mark of the value at ``path``, or of its nearest located parent."""
        for end in range(len(path), -1, -1):
            mark = self.values.get(path[:end])
            if mark is not None:
                return mark
        return None

    def key(self, path: SpecPath) -> Mark | None:
        """The mark of the key that introduces ``path`` (falls back to values)."""
        return self.keys.get(path) or self.value(path)

    def graft(self, other: SourceMap, prefix: SpecPath = ()) -> None:
        """Copy ``other``'s marks under ``prefix``, replacing what was there."""
        for table, theirs in ((self.values, other.values), (self.keys, other.keys)):
            for path in [p for p in table if p[: len(prefix)] == prefix and len(p) > len(prefix)]:
                del table[path]
            for path, mark in theirs.items():
                table[prefix + path] = mark

    def diagnostic(
        self,
        path: SpecPath,
        message: str,
        *,
        hint: str | None = None,
        key: bool = False,
    ) -> Diagnostic:
        mark = self.key(path) if key else self.value(path)
        return Diagnostic(
            message,
            file=mark.file if mark else None,
            line=mark.line if mark else None,
            column=mark.column if mark else None,
            path=format_path(path) or None,
            hint=hint,
        )


def read_text(path: Path, display: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """Read a spec file as UTF-8 text, refusing what is not a small text file."""
    try:
        if path.is_dir():
            raise SpecError(Diagnostic("is a directory, not a spec file", file=display))
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise LimitError(
                Diagnostic(
                    f"spec is {size:,} bytes; the limit is {limits.max_file_bytes:,}",
                    file=display,
                    hint="a spec describes a network in a few KiB; is this the right file?",
                )
            )
        data = path.read_bytes()[: limits.max_file_bytes + 1]
    except FileNotFoundError:
        raise SpecError(Diagnostic("no such file", file=display)) from None
    except PermissionError:
        raise SpecError(Diagnostic("permission denied", file=display)) from None
    except OSError as exc:
        raise SpecError(Diagnostic(f"cannot read: {exc.strerror or exc}", file=display)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            Diagnostic(
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
                file=display,
                line=line,
                column=column,
                hint="specs are UTF-8 YAML files",
            )
        ) from None


def parse_yaml(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values and a source map."""
    if "\x00" in text:
        index = text.index("\x00")
        raise SpecError(_mark_diag("binary data (NUL byte) in a spec", file, text, index))
    _prescan(text, file, limits)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_yaml_diag(exc, file)) from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML marks nearly everything
        raise SpecError(Diagnostic(f"invalid YAML: {exc}", file=file)) from None
    finally:
        loader.dispose()
    smap = SourceMap()
    if node is None:
        raise SpecError(Diagnostic("the spec is empty", file=file, line=1, column=1))
    builder = _Builder(file, smap, limits, loader)
    value = builder.build(node, ())
    return value, smap


def _prescan(text: str, file: str, limits: Limits) -> None:
    """Walk parser events (an iterative state machine) to bound depth and size
    before the recursive composer runs."""
    depth = 0
    try:
        for count, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
            if count > limits.max_yaml_events:
                raise LimitError(
                    Diagnostic(
                        f"more than {limits.max_yaml_events:,} YAML events",
                        file=file,
                        line=event.start_mark.line + 1,
                    )
                )
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > limits.max_depth:
                    raise LimitError(
                        Diagnostic(
                            f"nesting deeper than {limits.max_depth} levels",
                            file=file,
                            line=event.start_mark.line + 1,
                            column=event.start_mark.column + 1,
                        )
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent) and count > 2:
                raise SpecError(
                    Diagnostic(
                        "more than one YAML document in a spec",
                        file=file,
                        line=event.start_mark.line + 1,
                        column=event.start_mark.column + 1,
                        hint="remove the '---' separator",
                    )
                )
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_yaml_diag(exc, file)) from None


class _Builder:
    """Turns composed nodes into plain values, recording marks as it goes."""

    def __init__(self, file: str, smap: SourceMap, limits: Limits, loader: yaml.SafeLoader):
        self.file = file
        self.smap = smap
        self.limits = limits
        self.loader = loader
        self.count = 0

    def mark(self, node: yaml.Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, path: SpecPath, message: str, hint: str | None = None):
        mark = self.mark(node)
        return SpecError(
            Diagnostic(
                message,
                mark.file,
                mark.line,
                mark.column,
                format_path(path) or None,
                hint,
            )
        )

    def build(self, node: yaml.Node, path: SpecPath) -> Any:
        self.count += 1
        if self.count > self.limits.max_nodes:
            mark = self.mark(node)
            raise LimitError(
                Diagnostic(
                    f"more than {self.limits.max_nodes:,} values after expanding YAML aliases",
                    mark.file,
                    mark.line,
                    mark.column,
                    hint="a spec this large is almost certainly an alias bomb",
                )
            )
        self.smap.values.setdefault(path, self.mark(node))
        if node.tag not in _PLAIN_TAGS:
            raise self.fail(
                node,
                path,
                f"YAML tag {_short_tag(node.tag)!r} is not allowed",
                "archc reads plain data only: mappings, lists, strings, numbers, booleans",
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(node, path, f"{node.value!r} is not a finite number")
        return value

    def _mapping(self, node: yaml.MappingNode, path: SpecPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                raise self.fail(key_node, path, "mapping keys must be plain names")
            if key_node.tag == "tag:yaml.org,2002:merge":  # pragma: no cover - tag filtered above
                raise self.fail(key_node, path, "YAML merge keys ('<<') are not supported")
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                raise self.fail(
                    key_node,
                    path,
                    f"mapping key {key_node.value!r} is not a name",
                    "quote it if it is meant as a name",
                )
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise self.fail(
                    key_node,
                    path + (key,),
                    f"duplicate key {key!r} (first defined on line {first}, again on line "
                    f"{key_node.start_mark.line + 1})",
                    "YAML keeps only the last of two equal keys; remove or rename one",
                )
            seen[key] = key_node
            self.smap.keys[path + (key,)] = self.mark(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _yaml_diag(exc: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    hint = None
    if "'\\t'" in problem or "\\t" in problem:
        problem = "a tab character cannot indent YAML"
        hint = "indent with spaces"
    return Diagnostic(
        f"invalid YAML: {problem}",
        file=file,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        hint=hint,
    )


def _mark_diag(message: str, file: str, text: str, index: int) -> Diagnostic:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Diagnostic(message, file=file, line=line, column=column)
