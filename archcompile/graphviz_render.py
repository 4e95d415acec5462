"""``archc graph``: the annotated tree drawn as a Graphviz diagram.

The picture is read off the annotated tree (:mod:`archcompile.tree`), never
re-derived: node labels carry each step's name, kind and parameter count,
edges carry the shape of the tensor that flows along them (batch omitted).
``from:`` reads, joins, several outputs and training-only outputs (dashed)
are drawn as the spec wires them.

``--depth`` counts blocks and composite blocks: 1 draws one node per block;
2 draws each block as a cluster of its layers; every further level opens the
composite blocks (``define:`` uses) one level more. The branches of a
``concat``/``add`` are clusters of the level that holds them (they add no
level, unlike the rows of ``archc shapes --depth``), so ``--depth 3`` shows
an Inception block's four branches.

The DOT text is deterministic (same spec, same bytes): node ids are the
steps' display paths, and everything is emitted in the tree's order. Spec
text (names, descriptions) is escaped for DOT's HTML-like labels.
"""

from __future__ import annotations

import html
import re
import struct
import textwrap
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from archcompile.backends.layout import wiring
from archcompile.errors import Diagnostic, OutputError, UsageError
from archcompile.files import (
    PNG_SOFTWARE,
    Owner,
    check_output,
    is_archc_png,
    read_header,
    write_output,
)
from archcompile.ir import INPUT, BranchNode, CallNode, JoinNode
from archcompile.tree import Step, Tree

#: output suffixes and the Graphviz format that writes them (None: the DOT text)
FORMATS = {".svg": "svg", ".png": "png", ".dot": None}
#: longest name or kind a label shows; descriptions are wrapped and clipped
NAME_LIMIT = 60
DESCRIPTION_LIMIT = 400
FONT = "Helvetica"


@dataclass(frozen=True)
class End:
    """A value later steps can read: the DOT node that produced it, its shape."""

    node: str
    shape: tuple


def label_text(text: str, limit: int = NAME_LIMIT) -> str:
    """User text made safe inside an HTML-like label: clipped, control
    characters replaced (XML refuses them even escaped), then escaped, with
    backslashes doubled (Graphviz expands ``\\N``, ``\\G``... even here)."""
    text = str(text).encode("utf-8", "replace").decode("utf-8")
    text = re.sub(r"[\x00-\x1f\x7f]", "\N{REPLACEMENT CHARACTER}", text)
    if len(text) > limit:
        text = text[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"
    return html.escape(text, quote=True).replace("\\", "\\\\")


def shape_text(shape: tuple | None) -> str:
    """``1024x7x7``: a shape without its batch dimension."""
    return "x".join(map(str, shape or ()))


def _safe_id(name: str) -> str:
    """An id keeping a name's safe characters (names are identifiers and
    paths such as ``block3[0].branch2``); anything else becomes ``_``."""
    return re.sub(r"[^\w.\[\]:-]", "_", name, flags=re.ASCII) or "_"


def _quote(text: str) -> str:
    """A DOT quoted string (ids and plain attributes; never user text unescaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(attrs: dict[str, str]) -> str:
    """``[k=v, ...]``; values starting with ``<`` are HTML-like labels."""
    parts = [f"{k}={v if v.startswith('<') else _quote(v)}" for k, v in attrs.items()]
    return " [" + ", ".join(parts) + "]" if parts else ""


def _short_name(step: Step) -> str:
    """A step's ``name:`` when it has one, else the end of its display path
    (``branch2[1]``): the clusters around it say the rest."""
    return getattr(step.node, "name", None) or step.name.rsplit(".", 1)[-1]


def _kind(step: Step) -> str:
    """A step's kind as the spec writes it (a ``from:`` join: its mode)."""
    return step.node.mode if isinstance(step.node, JoinNode) else step.kind


def _block_kind(step: Step) -> str:
    """What a block holds: its one item's kind, or its first kinds in order."""
    kinds = [_kind(c) for c in step.children]
    if len(kinds) == 1:
        return kinds[0]
    shown = " \N{RIGHTWARDS ARROW} ".join(kinds[:3])
    return shown + (" \N{RIGHTWARDS ARROW} \N{HORIZONTAL ELLIPSIS}" if len(kinds) > 3 else "")


def _label(name: str, kind: str, params: int | None) -> str:
    """Three lines: the name in bold, the kind, the parameter count."""
    lines = [f"<b>{label_text(name)}</b>", label_text(kind)]
    if params is not None:
        lines.append(f"{params:,} params")
    return "<" + "<br/>".join(lines) + ">"


class DotWriter:
    """Draws a tree into DOT lines: nodes, clusters and shape-labelled edges."""

    def __init__(self, tree: Tree, depth: int) -> None:
        self.tree = tree
        self.depth = depth
        self.lines: list[str] = []
        #: edges are written after every cluster: an edge stated inside a
        #: cluster would pull its other end (outside) into that cluster
        self.edges: list[str] = []
        self.ids: set[str] = set()
        self.indent = 1
        self.clusters = 0
        self.dashed = False  # inside a block only training-only outputs need

    # -- primitives -----------------------------------------------------------
    def emit(self, line: str) -> None:
        self.lines.append("  " * self.indent + line)

    def new_id(self, name: str) -> str:
        """A DOT id for ``name``, made unique."""
        node_id, number = _safe_id(name), 2
        while node_id in self.ids:
            node_id, number = f"{_safe_id(name)}#{number}", number + 1
        self.ids.add(node_id)
        return node_id

    def node(self, name: str, label: str, **attrs: str) -> str:
        """Declare a node where we are (inside the open cluster); its id."""
        node_id = self.new_id(name)
        if self.dashed:
            attrs["style"] = attrs.get("style", "rounded,filled") + ",dashed"
        self.emit(_quote(node_id) + _attrs({"label": label, **attrs}))
        return node_id

    def edge(self, source: End, target: str, dashed: bool = False) -> None:
        attrs = {"label": shape_text(source.shape)}
        if dashed or self.dashed:
            attrs["style"] = "dashed"
        self.edges.append(f"  {_quote(source.node)} -> {_quote(target)}{_attrs(attrs)}")

    @contextmanager
    def cluster(self, name: str, kind: str, params: int) -> Iterator[None]:
        """A ``subgraph cluster_N`` labelled with a name, kind and parameter count."""
        self.clusters += 1
        self.emit(f"subgraph cluster_{self.clusters} {{")
        self.indent += 1
        style = "rounded,dashed" if self.dashed else "rounded"
        label = f"<<b>{label_text(name)}</b> {label_text(kind)} &middot; {params:,} params>"
        self.emit(f"graph{_attrs({'label': label, 'style': style, 'labeljust': 'l'})}")
        try:
            yield
        finally:
            self.indent -= 1
            self.emit("}")

    # -- the network ----------------------------------------------------------
    def network(self) -> None:
        """The input, every block wired as ``layout.wiring`` says, the outputs."""
        graph = self.tree.graph
        first = End(
            self.node(INPUT, _label(INPUT, shape_text(graph.input), None), shape="oval"),
            graph.input,
        )
        env = {INPUT: first}  # every value by name: the input, then each block
        for step, (name, reads, _, training) in zip(self.tree.blocks, wiring(graph)):
            self.dashed = training
            env[name] = self.block(step, [env[r] for r in reads], env)
        self.dashed = False
        for output in graph.outputs:
            self.output(output.name, output.training_only, env[output.name])

    def block(self, step: Step, inputs: list[End], env: dict[str, End]) -> End:
        """One node per block at depth 1, else a cluster of its layers."""
        if self.depth < 2:
            return self.leaf(step, inputs, step.name, _block_kind(step), step.params)
        with self.cluster(step.name, "block", step.params):
            return self.body(step.children, inputs, env, level=2)

    def output(self, name: str, training_only: bool, end: End) -> None:
        """An oval per output; training-only ones (and their edges) dashed."""
        kind = "training-only output" if training_only else "output"
        style = "filled,dashed" if training_only else "filled"
        label = _label(name, kind, None)
        node = self.node(f"output:{name}", label, shape="oval", style=style)
        self.edge(end, node, dashed=training_only)

    # -- bodies ---------------------------------------------------------------
    def body(self, steps: list[Step], inputs: list[End], env: dict[str, End], level: int) -> End:
        """A layer list: each step reads the previous one, or what its
        ``from:`` names; named steps become readable by later ones."""
        env = dict(env)
        for step in steps:
            reads = getattr(step.node, "reads", ())
            if isinstance(step.node, JoinNode):
                inputs = [env[r] for r in reads]
            elif reads:
                inputs = [env[reads[0]]]
            end = self.step(step, inputs, level)
            inputs = [end]
            if getattr(step.node, "name", None):
                env[step.node.name] = end
        return inputs[0]

    def step(self, step: Step, inputs: list[End], level: int) -> End:
        """A composite opens into a cluster while ``level`` is below the depth."""
        if isinstance(step.node, BranchNode):
            return self.branches(step, inputs[0], level)
        if isinstance(step.node, CallNode) and level < self.depth:
            with self.cluster(_short_name(step), step.kind, step.params):
                return self.body(step.children, inputs[:1], {INPUT: inputs[0]}, level + 1)
        return self.leaf(step, inputs, _short_name(step), _kind(step), step.params)

    def branches(self, step: Step, source: End, level: int) -> End:
        """Each branch a cluster from the same input; an empty one (the
        identity of an ``add``) is an edge straight to the join."""
        ends = []
        for branch in step.children:
            if not branch.children:
                ends.append(source)
                continue
            name = branch.name.rsplit(".", 1)[-1]
            with self.cluster(name, "branch", branch.params):
                ends.append(self.body(branch.children, [source], {INPUT: source}, level))
        # the join itself has no parameters: its branches' clusters show them
        return self.leaf(step, ends, _short_name(step), step.kind, None)

    def leaf(self, step: Step, inputs: list[End], name: str, kind: str, params: int | None) -> End:
        """One node for ``step``, with an edge from each value it reads."""
        node = self.node(step.name, _label(name, kind, params))
        for source in inputs:
            self.edge(source, node)
        return End(node, step.shape)  # type: ignore[arg-type]


def _title(tree: Tree) -> str:
    """The graph's caption: name, total parameters, wrapped description."""
    lines = [f"<b>{label_text(tree.name)}</b> &middot; {tree.total_params:,} params"]
    description = (tree.graph.description or "").strip()
    if description:
        clipped = label_text(" ".join(description.split()), DESCRIPTION_LIMIT)
        lines += textwrap.wrap(clipped, 80, break_long_words=False, break_on_hyphens=False)
    return "<" + "<br/>".join(lines) + ">"


#: attributes every diagram starts with; newrank and ordering keep branches
#: left to right in the order the spec writes them
#: written into every file (DOT and SVG keep the comment; PNGs get a tEXt
#: chunk): how the file policy recognizes a diagram archc drew
MARK = "archc graph"
GRAPH_DEFAULTS = {
    "labelloc": "t",
    "ordering": "out",
    "newrank": "true",
    "fontname": FONT,
    "comment": MARK,
}
NODE_DEFAULTS = {"shape": "box", "style": "rounded,filled", "fillcolor": "#f2f2f2"}
FONTS = {"fontname": FONT, "fontsize": "10"}


def graph_dot(tree: Tree, depth: int = 1) -> str:
    """The DOT text of ``tree`` drawn to ``depth`` (deterministic)."""
    writer = DotWriter(tree, depth)
    writer.network()
    header = [
        f"digraph {_quote(_safe_id(tree.name))} {{",
        f"  graph{_attrs({'label': _title(tree), **GRAPH_DEFAULTS})}",
        f"  node{_attrs({**NODE_DEFAULTS, **FONTS})}",
        f"  edge{_attrs({**FONTS, 'fontsize': '9'})}",
    ]
    return "\n".join([*header, *writer.lines, *writer.edges, "}"]) + "\n"


def output_format(path: Path) -> str | None:
    """The Graphviz format a suffix asks for (None: DOT text); a usage error
    for any other suffix, before any work is done."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(
            f"-o {path}: archc graph writes .svg, .png or .dot files (or '-o -' for DOT)"
        )
    return FORMATS[suffix]


def render(dot: str, fmt: str | None) -> bytes:
    """The file's bytes: the DOT text itself, or what Graphviz's ``dot`` draws."""
    if fmt is None:
        return dot.encode("utf-8")
    import graphviz

    try:
        return graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise OutputError(
            Diagnostic(
                f"cannot draw {fmt.upper()}: Graphviz's 'dot' program is not installed",
                hint="install it (Debian: apt-get install graphviz; `make` does it), "
                "or write the DOT text with -o FILE.dot",
            )
        ) from None


def _marked_png(data: bytes) -> bytes:
    """``data`` with a ``Software: archc`` tEXt chunk after its header chunk,
    as archc's other PNGs have (``dot`` cannot add one)."""
    payload = b"tEXt" + b"Software\x00" + PNG_SOFTWARE.encode()
    chunk = struct.pack(">I", len(payload) - 4) + payload + struct.pack(">I", zlib.crc32(payload))
    end_of_header = 8 + 4 + 4 + 13 + 4  # signature, then IHDR: length, type, data, crc
    return data[:end_of_header] + chunk + data[end_of_header:]


def recognize_graph(fd: int) -> Owner:
    """Whether the open file ``fd`` is a diagram (or PNG) archc wrote."""
    header = read_header(fd)
    if MARK.encode() in header or is_archc_png(header):
        return Owner.ARCHC
    return Owner.OTHER


def write_graph(path: Path, data: bytes, fmt: str | None, force: bool = False) -> None:
    """Write ``data`` to ``path`` under the file policy of every archc output
    (regular files only, never over a file archc did not write unless
    ``force``); missing parent folders are created."""
    suffix = path.suffix.lower()
    target = check_output(
        path, force=force, recognize=recognize_graph, what=f"{suffix} file", parents=True
    )
    if fmt == "png":
        data = _marked_png(data)
    write_output(target, lambda tmp: Path(tmp).write_bytes(data), parents=True)
