"""The source backend: render standalone PyTorch modules through jinja2.

The output reads like torchvision's hand-written models: one class per
composite block the spec uses (written once, with its parameters as
``__init__`` arguments), a model class named after the spec whose attributes
are the spec's blocks, and a comment with the inferred shape after each step
of ``forward``. It imports only torch, is already in ``ruff format`` style, and
is byte-for-byte deterministic: no timestamps, no absolute paths.

Python computes every string (arguments, shapes, line breaks, escapes); the
templates in ``templates/`` only lay them out.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import jinja2

from archcompile.backends.codegen_layers import LAYER_ARGS, Unexpressible, src
from archcompile.backends.layout import branch_has_module, members
from archcompile.backends.pyfmt import (
    INDENT,
    Bracket,
    Item,
    call,
    layout,
    parse_call,
)
from archcompile.backends.pytext import comment_text, docstring_text
from archcompile.errors import CodegenError, Diagnostic
from archcompile.ir import INPUT, BranchNode, CallNode, Graph, LayerNode, Node, Origin
from archcompile.shapes import SHAPE_RULES, Shape, infer_shapes, node_shape
from archcompile.spec.names import class_name
from archcompile.symbolic import Dim, Expr, substitute

HEADER_LINES = 4


def templates_dir() -> Path:
    """``templates/`` of a source checkout, or its copy inside an installed wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "module.py.j2").is_file():
            return candidate
    raise FileNotFoundError("archc templates not found")  # pragma: no cover


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def shape_comment(shape: Shape) -> str:
    """``# N x 480 x 5 x 5``; symbolic channels in parentheses when summed."""
    parts = ["N"]
    for dim in shape:
        if dim is None:
            parts.append("?")
        elif isinstance(dim, Expr) and (len(dim.terms) > 1 or dim.const or dim.terms[0][1] != 1):
            parts.append(f"({dim.render()})")
        else:
            parts.append(src(dim))
    return "# " + " x ".join(parts)


def _type_hint(values: list[Any]) -> str:
    kinds = []
    for value in values:
        kind = "bool" if isinstance(value, bool) else type(value).__name__
        if kind not in kinds:
            kinds.append(kind)
    return " | ".join(kinds)


class _Generator:
    """Walks the IR once for the model class and once per definition.

    Shapes are tracked symbolically: at top level, channels may depend on the
    spec's params (``num_classes``) while heights and widths are concrete;
    inside a composite class, channels depend on its parameters and the input
    is ``in_channels x H x W``.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.helpers: set[str] = set()  # "Concat" / "Add" helper classes in use
        self.uses_torch = False
        self.instances: dict[str, list[tuple[CallNode, Shape]]] = {}
        self.registered: set[int] = set()  # ids of the CallNodes in ``instances``
        self.order: list[str] = []  # definitions, dependencies first
        #: spec params baked in as values (they change spatial sizes or repeat counts)
        self.baked = {n: graph.params[n] for n in graph.structural_params}

    def fail(self, origin: Origin, problem: str, hint: str | None = None) -> CodegenError:
        return CodegenError(
            Diagnostic(
                f"cannot generate source: {problem}",
                file=origin.file,
                line=origin.line,
                column=origin.column,
                path=origin.path or None,
                hint=hint,
            )
        )

    # -- shapes ------------------------------------------------------------------
    def op(self, node: LayerNode, top: bool) -> Any:
        """The layer with its symbolic fields in place (baked at top level)."""
        symbols = {k: substitute(v, self.baked) if top else v for k, v in node.symbols.items()}
        return node.op.model_copy(update=symbols)

    @staticmethod
    def class_input(shape: Shape) -> Shape:
        if len(shape) == 3:
            return (Expr.name("in_channels"), Expr.name("H"), Expr.name("W"))
        return (Expr.name("in_features"),)

    def shapes_of(self, nodes: list[Node], shape: Shape, top: bool) -> Shape:
        for node in nodes:
            shape = self.shape_of(node, shape, top)
        return shape

    def shape_of(self, node: Node, shape: Shape, top: bool) -> Shape:
        if isinstance(node, LayerNode):
            out = SHAPE_RULES[node.op.kind](self.op(node, top), shape)
        elif isinstance(node, BranchNode):
            outs = [self.shapes_of(nodes, shape, top) for nodes in node.branches.values()]
            if node.node == "add":
                out = outs[0]
            else:
                channels: Dim = 0
                for o in outs:
                    channels = None if channels is None or o[0] is None else channels + o[0]
                out = (channels, *outs[0][1:])
        else:
            out = self.call_shape(node, shape, top)
        if top and None in out:
            # e.g. a strided layer inside a class: only the concrete size is known
            concrete = tuple(substitute(d, self.graph.params) for d in shape)
            known = node_shape(node, concrete)
            out = tuple(k if d is None else d for d, k in zip(out, known))
        return out

    def call_shape(self, node: CallNode, shape: Shape, top: bool) -> Shape:
        """A call's output from the outside: the class's shape formula with this
        call's arguments (which may themselves be symbolic)."""
        inner = self.shapes_of(node.body, self.class_input(shape), False)
        definition = self.graph.definitions[node.block]
        names: dict[str, Any] = {"in_channels": shape[0], "in_features": shape[0]}
        if len(shape) == 3:
            names.update(H=shape[1], W=shape[2])
        for param, value in zip(definition.params, node.symbols):
            value = substitute(value, self.baked) if top else value
            names.update(zip(param, value) if isinstance(param, tuple) else [(param, value)])
        return tuple(_bind(dim, names) for dim in inner)

    # -- registration of the classes to write ---------------------------------
    def register(self, node: CallNode, shape: Shape) -> None:
        seen = self.instances.get(node.block)
        if id(node) in self.registered:
            return
        self.registered.add(id(node))  # the graph keeps every node alive
        if seen is not None:
            if len(shape) != len(seen[0][1]):
                # one class cannot take an image in one place and a vector in another
                # (its first argument is in_channels or in_features, its norms 2-D or 1-D)
                raise self.fail(
                    node.origin,
                    f"block {node.block!r} is used on an image and on a vector",
                    "define two blocks, one for each kind of input",
                )
            seen.append((node, shape))
            return
        self.instances[node.block] = [(node, shape)]
        self._register_inside(node.body, self.class_input(shape))
        self.order.append(node.block)  # after its dependencies

    def _register_inside(self, nodes: list[Node], shape: Shape) -> None:
        for node in nodes:
            if isinstance(node, CallNode):
                self.register(node, shape)
            elif isinstance(node, BranchNode):
                for inner in node.branches.values():
                    self._register_inside(inner, shape)
            shape = self.shape_of(node, shape, False)

    # -- module expressions -----------------------------------------------------
    def items(self, nodes: list[Node], shape: Shape, top: bool) -> list[Item]:
        """Module expressions for a body, as the contents of an ``nn.Sequential``."""
        result: list[Item] = []
        for node in nodes:
            if isinstance(node, LayerNode):
                op = self.op(node, top)
                try:
                    args = LAYER_ARGS[op.kind](op, shape)
                except Unexpressible as problem:
                    raise self.fail(node.origin, f"{op.kind} needs {problem}") from None
                text = _render(f"layers/{op.kind}.py.j2", **args)
                result += [parse_call(line.strip()) for line in text.splitlines() if line.strip()]
            elif isinstance(node, CallNode):
                result.append(self.instance(node, shape, top))
            else:
                helper = node.node.capitalize()
                self.helpers.add(helper)
                branches: dict[str, Item] = {}
                for name, inner in node.branches.items():
                    mods = self.items(inner, shape, top)
                    branches[name] = (
                        call("nn.Sequential", *mods, magic=True)
                        if branch_has_module(inner)
                        else "nn.Identity()"
                    )
                result.append(call(helper, **branches))
            shape = self.shape_of(node, shape, top)
        return result

    def instance(self, node: CallNode, shape: Shape, top: bool) -> Item:
        self.register(node, shape)
        if shape[0] is None:
            raise self.fail(node.origin, f"the input size of {node.block} is not expressible")
        arguments = [substitute(a, self.baked) if top else a for a in node.symbols]
        return call(class_name(node.block), src(shape[0]), *(src(a) for a in arguments))

    # -- classes -------------------------------------------------------------------
    def definition_class(self, name: str) -> str:
        definition = self.graph.definitions[name]
        node, outer = self.instances[name][0]
        if definition.unrolled:
            names = ", ".join(sorted(definition.unrolled))
            raise self.fail(
                definition.origin,
                f"block {name!r} repeats layers a number of times given by its parameter {names}",
                "a generated class has a fixed structure; use a literal repeat count",
            )
        signature = [
            "self",
            f"{'in_channels' if len(outer) == 3 else 'in_features'}: int",
        ]
        unpack = []
        for index, param in enumerate(definition.params):
            values = [inst.arguments[index] for inst, _ in self.instances[name]]
            if isinstance(param, tuple):
                hints = ", ".join(_type_hint([v[i] for v in values]) for i in range(len(param)))
                signature.append(f"{param[-1]}: tuple[{hints}]")
                unpack.append(f"{', '.join(param)} = {param[-1]}")
            else:
                signature.append(f"{param}: {_type_hint(values)}")
        shape = self.class_input(outer)
        attributes: list[str] = []
        forward = [_comment(shape)]
        for member in members(node.body):
            if member.attr is not None:
                mods = self.items([member.node], shape, False)
                value = mods[0] if len(mods) == 1 else call("nn.Sequential", *mods, magic=True)
                attributes += layout(value, INDENT * 2, f"self.{member.attr} = ")
                shape = self.shape_of(member.node, shape, False)
                forward += [f"{INDENT * 2}x = self.{member.attr}(x)", _comment(shape)]
                continue
            branch_node: BranchNode = member.node  # type: ignore[assignment]
            terms = []
            for branch, nodes in branch_node.branches.items():
                if not branch_has_module(nodes):
                    terms.append("x")
                    continue
                sequential = call("nn.Sequential", *self.items(nodes, shape, False), magic=True)
                attributes += layout(sequential, INDENT * 2, f"self.{branch} = ")
                out = self.shapes_of(nodes, shape, False)
                forward += [f"{INDENT * 2}{branch} = self.{branch}(x)", _comment(out)]
                terms.append(branch)
            shape = self.shape_of(branch_node, shape, False)
            if branch_node.node == "concat":
                self.uses_torch = True
                joined = call("torch.cat", Bracket("[", [("", t) for t in terms], "]"), "1")
                forward += layout(joined, INDENT * 2, "x = ")
            else:
                forward.append(f"{INDENT * 2}x = {' + '.join(terms)}")
            forward.append(_comment(shape))
        return _render(
            "block_class.py.j2",
            name=class_name(name),
            # a doc of blanks only would leave an empty docstring: use the default
            doc=docstring_text(definition.doc or "", INDENT)
            or docstring_text(f"The {name!r} block of the spec.", INDENT),
            signature=layout(
                Bracket("def __init__(", [("", s) for s in signature], ") -> None:"),
                INDENT,
            ),
            unpack=unpack,
            attributes=attributes,
            forward=forward,
        )

    def model_class(self, concrete: dict[str, Shape], params: int, macs: int) -> str:
        graph = self.graph
        signature = ["self"] + [
            f"{name}: {_type_hint([value])} = {src(value)}"
            for name, value in graph.params.items()
            if name not in self.baked
        ]
        attributes: list[str] = []
        forward = [_comment(graph.input)]
        shapes: dict[str, Shape] = {INPUT: graph.input}
        for block in graph.blocks:
            shape = shapes[block.inputs[0]]
            sequential = call("nn.Sequential", *self.items(block.body, shape, True), magic=True)
            attributes += layout(sequential, INDENT * 2, f"self.{block.name} = ")
            shapes[block.name] = self.shapes_of(block.body, shape, True)
            # comments show the concrete sizes for the default params, as torchvision's do
            forward += [
                f"{INDENT * 2}x = self.{block.name}(x)",
                _comment(concrete[block.name]),
            ]
        c, h, w = graph.input
        doc = [
            (graph.description or "").strip() or f"{graph.name}, compiled by archc from its spec.",
            "",
            f"Input: N x {c} x {h} x {w}. Parameters: {params:,}. MACs per image: {macs:,}.",
        ]
        return _render(
            "model_class.py.j2",
            name=graph.name,
            doc=docstring_text("\n".join(doc), INDENT),
            signature=layout(
                Bracket("def __init__(", [("", s) for s in signature], ") -> None:"),
                INDENT,
            ),
            attributes=attributes,
            forward=forward,
        )

    def helper_class(self, name: str) -> str:
        if name == "Concat":
            self.uses_torch = True
            doc = "Applies each branch to the same input and concatenates the results."
            forward = ["return torch.cat([branch(x) for branch in self.children()], 1)"]
        else:
            doc = "Applies each branch to the same input and sums the results."
            forward = [
                "branches = iter(self.children())",
                "out = next(branches)(x)",
                "for branch in branches:",
                "    out = out + branch(x)",
                "return out",
            ]
        return _render("branches_class.py.j2", name=name, doc=doc, forward=forward)


def _bind(dim: Dim, names: dict[str, Any]) -> Dim:
    """Evaluate a class-level dimension with the names of one call."""
    if not isinstance(dim, Expr):
        return dim
    result: Dim = dim.const
    for name, coeff in dim.terms:
        value = names.get(name)
        if value is None or not isinstance(value, (int, Expr)) or isinstance(value, bool):
            return None
        result = result + coeff * value  # type: ignore[operator]
    return result


def _comment(shape: Shape) -> str:
    return INDENT * 2 + shape_comment(shape)


def generate(spec: Any) -> str:
    """The generated module for a loaded spec (see :func:`archcompile.generate_source`)."""
    graph: Graph = spec.graph
    report = infer_shapes(graph)
    generator = _Generator(graph)
    model = generator.model_class(
        {b.name: b.shape for b in report.blocks},
        report.total_params,
        report.macs_per_image,
    )
    classes = [generator.helper_class(h) for h in sorted(generator.helpers)]
    classes += [generator.definition_class(name) for name in generator.order]
    classes.append(model)
    imports = (["import torch"] if generator.uses_torch else []) + ["from torch import Tensor, nn"]
    body = _render(
        "body.py.j2",
        docstring=f"{graph.name}: standalone PyTorch source generated by archc.",
        imports=imports,
        classes=[c.rstrip("\n") for c in classes],
    )
    return _render(
        "module.py.j2",
        spec=comment_text(spec.display),
        spec_sha256=spec.sha256,
        source_sha256=hashlib.sha256(body.encode()).hexdigest(),
        body=body.rstrip("\n"),
    )


def split_header(text: str) -> tuple[dict[str, str], str] | None:
    """The ``archc-*`` header fields and the body of a generated file, or None
    when ``text`` does not start with an archc header."""
    lines = text.split("\n")
    if len(lines) <= HEADER_LINES or not lines[0].startswith("# Generated by archc from "):
        return None
    fields = {}
    for line in lines[2:HEADER_LINES]:
        key, sep, value = line.removeprefix("# ").partition(": ")
        if not sep:
            return None
        fields[key] = value
    return fields, "\n".join(lines[HEADER_LINES:])


def edited_by_hand(text: str) -> bool | None:
    """True when a generated file no longer matches its recorded hash; None when
    it is not an archc file at all."""
    parsed = split_header(text)
    if parsed is None or "archc-source-sha256" not in parsed[0]:
        return None
    fields, body = parsed
    return hashlib.sha256(body.encode()).hexdigest() != fields["archc-source-sha256"]
