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

from archcompile.errors import Diagnostic, LimitError, SpecError, clipped_repr
from archcompile.limits import DEFAULT_LIMITS, Limits

SpecPath = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
}

_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_TAG_WORDS = {
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
}


@dataclass(frozen=True)
class Mark:
    """A position in a spec file; line and column are 1-based. A value given on
    the command line has the option as its "file" and no line."""

    file: str
    line: int | None
    column: int | None


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
        #: scalars written in quotes: their text starts one column later
        self.quoted: set[SpecPath] = set()

    def value(self, path: SpecPath) -> Mark | None:
        """The mark of the value at ``path``, or of its nearest located parent."""
        for end in range(len(path), -1, -1):
            mark = self.values.get(path[:end])
            if mark is not None:
                return mark
        return None

    def inside(self, path: SpecPath, offset: int) -> Mark | None:
        """The mark of character ``offset`` of the string at ``path`` (an
        expression's problem points at its exact column)."""
        mark = self.values.get(path)
        if mark is None or mark.column is None:
            return self.value(path)
        shift = offset + (1 if path in self.quoted else 0)
        return Mark(mark.file, mark.line, mark.column + shift)

    def key(self, path: SpecPath) -> Mark | None:
        """The mark of the key that introduces ``path`` (falls back to values)."""
        return self.keys.get(path) or self.value(path)

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
        shown = f"{size:,} bytes"
        if size <= limits.max_file_bytes:
            # never read past the limit: devices and pipes report no size
            # (``extends: /dev/zero`` would otherwise read until memory runs out)
            with path.open("rb") as handle:
                data = handle.read(limits.max_file_bytes + 1)
            size = len(data)
            shown = f"more than {limits.max_file_bytes:,} bytes"
        if size > limits.max_file_bytes:
            raise LimitError(
                Diagnostic(
                    f"spec is {shown}; the limit is {limits.max_file_bytes:,}",
                    file=display,
                    hint="a spec describes a network in a few KiB; is this the right file?",
                )
            )
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


#: libyaml's parser, when PyYAML was built with it: about twenty times faster
#: than the pure-Python one, it checks the limits below before anything else,
#: so that a spec far over them is refused at once. The document itself is
#: then read by the pure-Python loader, whose error messages archc shows and
#: whose results do not depend on how PyYAML was installed.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def parse_yaml(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values and a source map."""
    if "\x00" in text:
        index = text.index("\x00")
        raise SpecError(_mark_diag("binary data (NUL byte) in a spec", file, text, index))
    scanned = False
    if _FAST_LOADER is not None:
        try:
            _prescan(text, file, limits, _FAST_LOADER)
            scanned = True
        except (yaml.YAMLError, UnicodeError):
            pass  # not YAML to libyaml: the pure-Python scan below says why
    try:
        if not scanned:
            _prescan(text, file, limits, yaml.SafeLoader)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_yaml_diag(exc, file)) from None
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise SpecError(
            _mark_diag(
                f"invalid YAML: the character U+{code:04X} is not allowed in YAML text",
                file,
                text,
                exc.position,
                hint="remove it; a string may spell it as an escape in double quotes",
            )
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML marks nearly everything
        raise SpecError(Diagnostic(f"invalid YAML: {exc}", file=file)) from None
    except RecursionError:  # pragma: no cover - the scan bounds the nesting first
        raise LimitError(Diagnostic("nesting too deep", file=file)) from None
    smap = SourceMap()
    if node is None:
        raise SpecError(Diagnostic("the spec is empty", file=file, line=1, column=1))
    builder = _Builder(file, smap, limits, loader)
    value = builder.build(node, ())
    return value, smap


def _prescan(text: str, file: str, limits: Limits, loader_class: type) -> None:
    """Walk parser events (an iterative state machine) to bound depth and size
    before the recursive composer runs."""
    depth = 0
    nodes = 0
    for count, event in enumerate(yaml.parse(text, Loader=loader_class)):
        if count > limits.max_yaml_events:
            raise LimitError(
                Diagnostic(
                    f"more than {limits.max_yaml_events:,} YAML events",
                    file=file,
                    line=event.start_mark.line + 1,
                )
            )
        if isinstance(event, yaml.NodeEvent) and not isinstance(event, yaml.AliasEvent):
            # every node written out is a value of its own: refuse before
            # composing what cannot fit in the value limit anyway
            nodes += 1
            if nodes > limits.max_nodes:
                raise LimitError(
                    Diagnostic(
                        f"more than {limits.max_nodes:,} values",
                        file=file,
                        line=event.start_mark.line + 1,
                        column=event.start_mark.column + 1,
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


class _Builder:
    """Turns composed nodes into plain values, recording marks as it goes."""

    def __init__(self, file: str, smap: SourceMap, limits: Limits, loader: yaml.SafeLoader):
        self.file = file
        self.smap = smap
        self.limits = limits
        self.loader = loader
        self.count = 0
        self.open: list[yaml.Node] = []  # collections being built, outermost first

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
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        # an alias may name a collection that contains it, or nest collections
        # deeper than the text does: both would recurse without end
        if any(node is open_node for open_node in self.open):
            raise self.fail(node, path, "a YAML alias refers to a collection that contains it")
        if len(self.open) >= self.limits.max_depth:
            message = f"nesting deeper than {self.limits.max_depth} levels after expanding aliases"
            raise LimitError(self.fail(node, (), message).first)  # its path would be as deep
        self.open.append(node)
        try:
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.open.pop()
        raise self.fail(node, path, f"YAML tag {_short_tag(node.tag)!r} does not fit this value")

    def _scalar(self, node: yaml.Node, path: SpecPath) -> Any:
        """A scalar's value; a bad explicit tag (``!!int abc``) is an error here."""
        if node.tag in (_MAP, _SEQ):
            raise self.fail(
                node, path, f"YAML tag {_short_tag(node.tag)!r} does not fit this value"
            )
        try:
            value = self.loader.construct_object(node)
        except (ValueError, KeyError, IndexError, yaml.YAMLError):
            kind = _TAG_WORDS.get(node.tag, _short_tag(node.tag))
            raise self.fail(
                node, path, f"{clipped_repr(node.value)} is not a valid {kind}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(node, path, f"{clipped_repr(node.value)} is not a finite number")
        if isinstance(value, str) and node.style in ("'", '"'):
            self.smap.quoted.add(path)
        return value

    def _mapping(self, node: yaml.MappingNode, path: SpecPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, path, "YAML merge keys ('<<') are not supported")
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                raise self.fail(key_node, path, "mapping keys must be plain names")
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                raise self.fail(
                    key_node,
                    path,
                    f"mapping key {key_node.value!r} is not a name",
                    "quote it if it is meant as a name",
                )
            if key in seen:
                first, again = self.mark(seen[key]), self.mark(key_node)
                where = (
                    f"first defined on line {first.line}, again on line {again.line}"
                    if first.line != again.line
                    else f"twice on line {first.line}, at columns {first.column} and {again.column}"
                )
                raise self.fail(
                    key_node,
                    path + (key,),
                    f"duplicate key {key!r} ({where})",
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


def _mark_diag(
    message: str, file: str, text: str, index: int, hint: str | None = None
) -> Diagnostic:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Diagnostic(message, file=file, line=line, column=column, hint=hint)
