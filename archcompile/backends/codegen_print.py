"""Print the annotated tree as Python: module expressions and ``forward`` lines.

Everything here reads the symbolic view of the tree (:attr:`Step.sym`,
:attr:`Step.sym_calls`): module calls come from the lowering table and are
printed as they are; shapes come from the tree. Structure follows
:mod:`archcompile.backends.layout`, exactly as the live backend instantiates
it.
"""

from __future__ import annotations

from typing import Any

from archcompile.backends.layout import branch_has_module, is_named, keyed, sequence
from archcompile.backends.pyfmt import INDENT, LINE_LENGTH, Bracket, Item, call, layout, width
from archcompile.backends.pytext import py_string
from archcompile.errors import CodegenError, Diagnostic
from archcompile.ir import BranchNode, CallNode, Graph, JoinNode, LayerNode, Origin
from archcompile.lowering import ModuleCall
from archcompile.modules import helper_name
from archcompile.symbolic import Expr, substitute
from archcompile.tree import Step, class_width

#: joins written as an operator: ``a + b``, ``x * gate``
OPERATORS = {"add": " + ", "mul": " * "}


class Unexpressible(Exception):
    """A value the generated source cannot state (the message says which)."""


def src(value: Any) -> str:
    """Python source for a value: ints, floats, bools, strings, tuples, Exprs."""
    if value is None:
        raise Unexpressible("a size that depends on the input's height and width")
    if isinstance(value, Expr):
        return value.render()
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return py_string(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(src(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"cannot render {value!r}")  # pragma: no cover


def shape_comment(shape: Any) -> str:
    """``# N x 480 x 5 x 5``; symbolic channels in parentheses when summed."""
    parts = ["N"]
    for dim in shape:
        if dim is None:
            parts.append("?")
        elif isinstance(dim, Expr) and (len(dim.terms) > 1 or dim.const or dim.terms[0][1] != 1):
            parts.append(f"({dim.render()})")
        else:
            parts.append(src(dim))
    return INDENT * 2 + "# " + " x ".join(parts)


def fail(origin: Origin, problem: str, hint: str | None = None) -> CodegenError:
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


def _named_items(pairs: list[tuple[str, Item]]) -> Bracket:
    """``nn.Sequential(OrderedDict([("conv", ...), ("bn", ...)]))``."""
    entries = [("", Bracket("(", [("", py_string(k)), ("", v)], ")")) for k, v in pairs]
    return call("nn.Sequential", call("OrderedDict", Bracket("[", entries, "]", magic=True)))


class Printer:
    """Module expressions for steps; ``top``: the model class (spec params
    that change sizes or structure are written as their values)."""

    def __init__(self, graph: Graph, top: bool, fixed: dict[str, Any] | None = None) -> None:
        self.graph = graph
        self.top = top
        self.baked = {n: graph.params[n] for n in graph.structural_params}
        self.fixed = fixed or {}  # parameters the class being printed fixes
        self.helpers: set[str] = set()  # "Concat" / "Add" / "Mul" classes in use
        self.own: set[str] = set()  # archc's own module classes in use
        self.imports: set[str] = set()  # "torch", "OrderedDict"

    def module_call(self, step: Step, module: ModuleCall) -> Bracket:
        try:
            args = [src(a) for a in module.args]
            kwargs = {k: src(v) for k, v in module.kwargs}
        except Unexpressible as problem:
            raise fail(step.node.origin, f"{step.kind} needs {problem}") from None  # type: ignore[union-attr]
        own = helper_name(module.ctor)
        if own:
            self.own.add(own)
        return call(own or f"nn.{module.ctor}", *args, **kwargs)

    def member(self, step: Step) -> Item:
        """The expression of one step standing on its own (an attribute)."""
        node = step.node
        if isinstance(node, LayerNode):
            items = [self.module_call(step, c) for c in step.sym_calls]
            if len(items) == 1:
                return items[0]
            if node.name:
                self.imports.add("OrderedDict")
                return _named_items([(c.role, i) for c, i in zip(step.sym_calls, items)])
            return call("nn.Sequential", *items, magic=True)
        if isinstance(node, CallNode):
            return self.instance(step)
        helper = node.node.capitalize()  # type: ignore[union-attr]
        self.helpers.add(helper)
        return call(helper, **self.branches(step))

    def sequential(self, steps: list[Step]) -> Item:
        children = sequence(steps, symbolic=True)
        items = [
            self.module_call(c.step, c.call) if c.call else self.member(c.step) for c in children
        ]  # type: ignore[arg-type]
        if not is_named(children):
            return call("nn.Sequential", *items, magic=True)
        self.imports.add("OrderedDict")
        return _named_items([(k, i) for (k, _), i in zip(keyed(children), items)])

    def branches(self, step: Step) -> dict[str, Item]:
        node: BranchNode = step.node  # type: ignore[assignment]
        result: dict[str, Item] = {}
        for child in step.children:
            name = child.branch
            if not branch_has_module(child.children):
                result[name] = "nn.Identity()"
            elif name in node.singles:
                result[name] = self.member(child.children[0])
            else:
                result[name] = self.sequential(child.children)
        return result

    def instance(self, step: Step) -> Item:
        node: CallNode = step.node  # type: ignore[assignment]
        cls = step.cls
        if step.sym_in is None or class_width(step.sym_in) is None:
            raise fail(node.origin, f"the input size of {node.block} is not expressible")
        definition = self.graph.definitions[node.block]
        arguments = []
        for param, value in zip(definition.params, node.arguments):
            if _leaves(param) & set(cls.fixed):  # type: ignore[union-attr]
                continue  # fixed in the class itself
            value = substitute(value, self.baked if self.top else self.fixed)
            arguments.append(src(value))
        return call(cls.name, src(class_width(step.sym_in)), *arguments)  # type: ignore[union-attr]


def _leaves(param: Any) -> set[str]:
    return set(param) if isinstance(param, tuple) else {param}


class Forward:
    """The lines of a ``forward``: each step on the running value ``x`` or on
    the values its ``from:`` names; values read later keep their own name."""

    def __init__(self, read_later: set[str], keep_input: bool) -> None:
        self.read_later = read_later
        self.current = "x_in" if keep_input else "x"
        self.vars: dict[str, str] = {"input": self.current}
        self.lines: list[str] = [INDENT * 2 + "x_in = x"] if keep_input else []

    def source(self, node: Any) -> str:
        if node.reads and not isinstance(node, JoinNode):
            return self.vars[node.reads[0]]
        return self.current

    def target(self, name: str | None) -> str:
        return name if name is not None and name in self.read_later else "x"

    def assign(self, name: str | None, expr: Item, shape: Any, guard: bool = False) -> None:
        target = self.target(name)
        if guard:  # computed in training mode only; typed for TorchScript
            self.lines += [
                f"{INDENT * 2}{target}: Tensor | None = None",
                f"{INDENT * 2}if self.training:",
            ]
            self.lines += _assignment(target, expr, INDENT * 3)
        else:
            self.lines += _assignment(target, expr, INDENT * 2)
        if shape is not None:
            self.lines.append(shape_comment(shape))
        if name is not None:
            self.vars[name] = target
        self.current = target

    def join(self, mode: str, reads: tuple[str, ...]) -> Item:
        names = [self.vars[r] for r in reads]
        if mode in OPERATORS:
            return OPERATORS[mode].join(names)
        return call("torch.cat", Bracket("[", [("", n) for n in names], "]"), "1")


def _assignment(target: str, expr: Item, indent: str) -> list[str]:
    """``target = expr`` as ruff formats it, including a long sum of names
    (parenthesized, one operand per line)."""
    if (
        isinstance(expr, str)
        and " + " in expr
        and width(f"{indent}{target} = {expr}") > LINE_LENGTH
    ):
        first, *rest = expr.split(" + ")
        operands = [f"{indent}{INDENT}{first}"] + [f"{indent}{INDENT}+ {r}" for r in rest]
        return [f"{indent}{target} = (", *operands, f"{indent})"]
    return layout(expr, indent, f"{target} = ")
