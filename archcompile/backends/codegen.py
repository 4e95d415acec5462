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

from archcompile import modules as own_modules
from archcompile.backends.codegen_print import OPERATORS, Forward, Printer, shape_comment, src
from archcompile.backends.layout import branch_has_module, members, wiring
from archcompile.backends.pyfmt import INDENT, Bracket, call, layout
from archcompile.backends.pytext import comment_text, docstring_text
from archcompile.ir import JoinNode
from archcompile.tree import GeneratedClass, Tree

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


def _type_hint(values: list[Any]) -> str:
    kinds = []
    for value in values:
        kind = "bool" if isinstance(value, bool) else type(value).__name__
        if kind not in kinds:
            kinds.append(kind)
    return " | ".join(kinds)


def _signature(parts: list[str]) -> list[str]:
    return layout(Bracket("def __init__(", [("", s) for s in parts], ") -> None:"), INDENT)


def _reads(nodes: list[Any]) -> set[str]:
    return {name for node in nodes for name in node.reads}


class _Generator:
    """Prints the source tree: one class per generated class, then the model."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.graph = tree.graph
        self.uses_torch = False
        self.imports: set[str] = set()
        self.helpers: set[str] = set()
        self.own: set[str] = set()  # archc's own module classes (archcompile.modules)

    def _printer(self, top: bool) -> Printer:
        return Printer(self.graph, top)

    def _collect(self, printer: Printer) -> None:
        self.helpers |= printer.helpers
        self.own |= printer.own
        self.imports |= printer.imports

    # -- the class of one structure of a definition -----------------------------
    def definition_class(self, cls: GeneratedClass) -> str:
        definition = self.graph.definitions[cls.definition]
        printer = Printer(self.graph, top=False, fixed=cls.fixed)
        signature = ["self", f"{'in_channels' if cls.rank == 3 else 'in_features'}: int"]
        unpack = []
        for index, param in enumerate(definition.params):
            leaves = param if isinstance(param, tuple) else (param,)
            if set(leaves) & set(cls.fixed):
                continue
            values = [arguments[index] for arguments in cls.values]
            if isinstance(param, tuple):
                hints = ", ".join(_type_hint([v[i] for v in values]) for i in range(len(param)))
                signature.append(f"{param[-1]}: tuple[{hints}]")
                unpack.append(f"{', '.join(param)} = {param[-1]}")
            else:
                signature.append(f"{param}: {_type_hint(values)}")
        body = [step.node for step in cls.steps]
        forward = Forward(_reads(body), "input" in _reads(body))
        forward.lines.append(shape_comment(cls.sym_in))
        attributes: list[str] = []
        for member, step in zip(members(body), cls.steps):
            self._member(printer, forward, attributes, member.attr, step)
        self._collect(printer)
        forward.lines.append(f"{INDENT * 2}return {forward.current}")
        return _render(
            "block_class.py.j2",
            name=cls.name,
            # a doc of blanks only would leave an empty docstring: use the default
            doc=docstring_text(definition.doc or "", INDENT)
            or docstring_text(f"The {cls.definition!r} block of the spec.", INDENT),
            signature=_signature(signature),
            unpack=unpack,
            attributes=attributes,
            forward=forward.lines,
        )

    @staticmethod
    def _branch_module(printer, node, child) -> Any:
        if child.branch in node.singles:
            return printer.member(child.children[0])
        return printer.sequential(child.children)

    def _member(self, printer, forward: Forward, attributes: list[str], attr, step) -> None:
        node = step.node
        if isinstance(node, JoinNode):
            self.uses_torch |= node.mode == "concat"
            forward.assign(node.name, forward.join(node.mode, node.reads), step.sym)
            return
        source = forward.source(node)
        if attr is not None:
            attributes += layout(printer.member(step), INDENT * 2, f"self.{attr} = ")
            forward.assign(node.name, call(f"self.{attr}", source), step.sym)
            return
        if len(step.children) == 1 and branch_has_module(step.children[0].children):
            # the other branches left out by their if:: this branch alone
            child = step.children[0]
            expr = self._branch_module(printer, node, child)
            attributes += layout(expr, INDENT * 2, f"self.{child.branch} = ")
            forward.assign(node.name, call(f"self.{child.branch}", source), step.sym)
            return
        terms = []  # a concat/add of branches: each branch on its own line
        for child in step.children:
            branch = child.branch
            if not branch_has_module(child.children):
                terms.append(source)
                continue
            expr = self._branch_module(printer, node, child)
            attributes += layout(expr, INDENT * 2, f"self.{branch} = ")
            forward.lines += layout(call(f"self.{branch}", source), INDENT * 2, f"{branch} = ")
            forward.lines.append(shape_comment(child.sym))
            terms.append(branch)
        if node.node == "concat":
            self.uses_torch = True
            joined: Any = call("torch.cat", Bracket("[", [("", t) for t in terms], "]"), "1")
        else:
            joined = OPERATORS[node.node].join(terms)
        forward.assign(node.name, joined, step.sym)

    # -- the model ----------------------------------------------------------------
    def model_class(self) -> str:
        graph, tree = self.graph, self.tree
        printer = self._printer(top=True)
        baked = printer.baked
        signature = ["self"] + [
            f"{name}: {_type_hint([value])} = {src(value)}"
            for name, value in graph.params.items()
            if name not in baked
        ]
        outputs = graph.outputs
        several = len(outputs) > 1
        read_later = _reads([b.body[0] for b in graph.blocks])
        if several:
            read_later |= {o.name for o in outputs}
        training_only = {name for name, _, _, only in wiring(graph) if only}
        read_later |= training_only
        forward = Forward(read_later, "input" in read_later)
        forward.lines.append(shape_comment(graph.input))
        attributes: list[str] = []
        for block, step in zip(graph.blocks, tree.blocks):
            self._block(printer, forward, attributes, block, step, block.name in training_only)
        self._collect(printer)
        forward.lines += self._returns(forward, several)
        c, h, w = graph.input
        doc = [
            (graph.description or "").strip() or f"{graph.name}, compiled by archc from its spec.",
            "",
            f"Input: N x {c} x {h} x {w}. Parameters: {tree.total_params:,}. "
            + f"MACs per image: {tree.macs_per_image:,}.",
        ]
        return _render(
            "model_class.py.j2",
            name=graph.name,
            doc=docstring_text("\n".join(doc), INDENT),
            signature=_signature(signature),
            attributes=attributes,
            forward=forward.lines,
            returns=self._return_type(several),
        )

    def _block(self, printer, forward: Forward, attributes, block, step, guard: bool) -> None:
        steps = step.children
        first = block.body[0]
        source = forward.source(first)
        if isinstance(first, JoinNode):
            self.uses_torch |= first.mode == "concat"
            steps = steps[1:]
            if not steps:
                forward.assign(block.name, forward.join(first.mode, first.reads), step.shape, guard)
                return
            forward.assign(None, forward.join(first.mode, first.reads), steps[0].sym_in)
            source = forward.current
        expr = printer.member(steps[0]) if block.single else printer.sequential(steps)
        attributes += layout(expr, INDENT * 2, f"self.{block.name} = ")
        # comments show the concrete sizes for the default params, as torchvision's do
        forward.assign(block.name, call(f"self.{block.name}", source), step.shape, guard)

    def _returns(self, forward: Forward, several: bool) -> list[str]:
        outputs = self.graph.outputs
        if not several:
            return [f"{INDENT * 2}return {forward.vars[outputs[0].name]}"]
        lines = []
        main = [o for o in outputs if not o.training_only]
        if len(main) == 1 and len(main) < len(outputs):
            lines += [
                f"{INDENT * 2}if not self.training:",
                f"{INDENT * 3}return {forward.vars[main[0].name]}",
            ]
        values = call(f"{self.graph.name}Outputs", *(forward.vars[o.name] for o in outputs))
        return lines + layout(values, INDENT * 2, "return ")

    def _return_type(self, several: bool) -> str:
        if not several:
            return "Tensor"
        name = f"{self.graph.name}Outputs"
        main = [o for o in self.graph.outputs if not o.training_only]
        if len(main) == 1 and len(main) < len(self.graph.outputs):
            return f"{name} | Tensor"
        return name

    def outputs_class(self) -> str | None:
        outputs = self.graph.outputs
        if len(outputs) == 1:
            return None
        self.imports.add("NamedTuple")
        fields = [f"{o.name}: Tensor{' | None' if o.training_only else ''}" for o in outputs]
        doc = f"What {self.graph.name} returns: " + ", ".join(o.name for o in outputs) + "."
        if any(o.training_only for o in outputs):
            doc += " Training-only outputs are None in eval mode."
        return _render(
            "outputs_class.py.j2",
            name=f"{self.graph.name}Outputs",
            doc=docstring_text(doc, INDENT),
            fields=fields,
        )

    def helper_class(self, name: str) -> str:
        if name == "Concat":
            self.uses_torch = True
            doc = "Applies each branch to the same input and concatenates the results."
            forward = ["return torch.cat([branch(x) for branch in self.children()], 1)"]
        else:
            verb, operator = ("sums", "+") if name == "Add" else ("multiplies", "*")
            doc = f"Applies each branch to the same input and {verb} the results."
            if name == "Mul":
                doc = doc[:-1] + ", broadcasting."
            # a list, not iter()/next(): TorchScript compiles this; joined in
            # order, as the live module does, so results are bit-identical
            forward = [
                "outs = [branch(x) for branch in self.children()]",
                "out = outs[0]",
                "for other in outs[1:]:",
                f"    out = out {operator} other",
                "return out",
            ]
        return _render("branches_class.py.j2", name=name, doc=doc, forward=forward)

    def imports_block(self) -> list[str]:
        lines = []
        if "OrderedDict" in self.imports:
            lines.append("from collections import OrderedDict")
        if "NamedTuple" in self.imports:
            lines.append("from typing import NamedTuple")
        if lines:
            lines.append("")
        torch_lines = {"from torch import Tensor, nn"} | own_modules.imports(self.own)
        if self.uses_torch:
            torch_lines.add("import torch")
        return lines + [line for line in own_modules.ALLOWED_IMPORTS if line in torch_lines]


#: the function a spec's ``make_divisible(...)`` becomes in generated source
#: (:func:`archcompile.symbolic.make_divisible`, torchvision's rule)
MAKE_DIVISIBLE = """\
def _make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    \"\"\"``value`` rounded to the nearest multiple of ``divisor`` (at least
    ``min_value``), and never more than 10% down.\"\"\"
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)
"""


def generate(spec: Any) -> str:
    """The generated module for a loaded spec (see :func:`archcompile.generate_source`)."""
    tree: Tree = spec.tree()
    graph = tree.graph
    generator = _Generator(tree)
    classes = [generator.definition_class(cls) for cls in tree.classes]
    outputs = generator.outputs_class()
    model = generator.model_class()
    helpers = [generator.helper_class(h) for h in sorted(generator.helpers)]
    helpers = own_modules.sources(generator.own) + helpers
    everything = helpers + classes + ([outputs] if outputs else []) + [model]
    if any("_make_divisible(" in text for text in everything):
        everything.insert(0, MAKE_DIVISIBLE)
    body = _render(
        "body.py.j2",
        docstring=f"{graph.name}: standalone PyTorch source generated by archc.",
        imports=generator.imports_block(),
        classes=[c.rstrip("\n") for c in everything],
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
