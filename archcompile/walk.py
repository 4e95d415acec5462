"""The walker of the annotated tree: one node at a time, shape rule, count
rule and lowering applied once (see :mod:`archcompile.tree`).

A :class:`Walk` is concrete (real shapes and counts), symbolic (shapes and
module calls written with parameters, for generated source) or both at the
top level of a source tree. :class:`Trace` keeps the readable trace a shape
error shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archcompile.errors import Diagnostic, ShapeError
from archcompile.ir import (
    INPUT,
    BranchNode,
    CallNode,
    Condition,
    JoinNode,
    LayerNode,
    Node,
    Origin,
)
from archcompile.joins import join_shapes
from archcompile.lowering import LOWERING
from archcompile.shapes import (
    COUNT_RULES,
    SHAPE_RULES,
    Shape,
    ShapeProblem,
    format_shape,
)
from archcompile.spec.expressions import ROUNDING_HINT, ExprError, truth
from archcompile.spec.expressions import evaluate as evaluate_expression
from archcompile.symbolic import Expr, evaluate, has_expr, substitute
from archcompile.tree import Step

if TYPE_CHECKING:
    from archcompile.annotator import Annotator


class Trace:
    """The readable trace of a block that a shape error shows: one line per
    top-level step, plus the steps inside the composite being walked."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.inner: list[str] = []
        self.calls: list[CallNode] = []
        self.depth = 0

    def record(self, line: str) -> None:
        if self.depth == 0:
            self.lines.append(line)
            self.inner.clear()
        else:
            self.inner.append(line)

    def error(self, problem: ShapeProblem, origin: Origin, received: Shape | None) -> ShapeError:
        notes: list[str] = []
        if self.lines or self.inner:
            inner = self.inner[-12:]
            skipped = len(self.inner) - len(inner)
            notes = ["shape trace of this block:", *self.lines]
            notes += [f"    ... {skipped} earlier steps"] if skipped else []
            notes += ["  " + line for line in inner]
        for call in reversed(self.calls):
            origin = call.origin
            where = f" ({origin.file}:{origin.line})" if origin.file and origin.line else ""
            notes.append(f"inside {call.block!r} used at {call.origin.path}{where}")
        message = str(problem)
        if "receives" not in message and received is not None:
            message += f" (it receives {format_shape(received)})"
        return ShapeError(
            Diagnostic(
                message,
                file=origin.file,
                line=origin.line,
                column=origin.column,
                path=origin.path or None,
                hint=problem.hint,
                notes=tuple(notes),
            )
        )


class Walk:
    def __init__(
        self, annotator: Annotator, trace: Trace, concrete: bool, symbolic: bool, top: bool
    ) -> None:
        self.a = annotator
        self.trace = trace
        self.concrete = concrete
        self.symbolic = symbolic
        self.top = top  # symbolic over the spec's params (else: a class's params)
        #: values of the enclosing block's parameters, when a use is walked inline
        self.env: dict[str, Any] | None = None
        #: concrete values of the names in scope (spec params, or a call's
        #: arguments, and the ``in_...`` sizes of the block's input)
        self.values: dict[str, Any] = annotator.graph.params
        #: at the top level: the block's input sizes written with the spec's params
        self.sym_inputs: dict[str, Any] = {}

    def body_step(self, name, kind, owner, nodes, shape, sym, values) -> Step:
        out, out_sym, children = self.body(nodes, name, shape, sym, values)
        return total(
            Step(name, kind, owner, shape, out, children=children, sym_in=sym, sym=out_sym)
        )

    def body(
        self,
        nodes: list[Node],
        prefix: str,
        shape: Shape | None,
        sym: Shape | None,
        outer: dict[str, tuple[Any, Any]],
    ) -> tuple[Shape | None, Shape | None, list[Step]]:
        values = dict(outer)
        values[INPUT] = outer[INPUT] if self.top else (shape, sym)
        steps = []
        for index, node in enumerate(nodes):
            if node.when is not None and not self.decide(node.when, id(node)):
                continue  # its if: condition is false for this use
            if node.reads and not isinstance(node, JoinNode):
                shape, sym = self.read(values, node.reads[0], node)
            step = self.node(node, f"{prefix}[{index}]", shape, sym, values)
            steps.append(step)
            shape, sym = step.shape, step.sym
            if node.name is not None:
                values[node.name] = (shape, sym)
        return shape, sym, steps

    def node(self, node: Node, name: str, shape, sym, values) -> Step:
        self.trace.depth += 1
        try:
            step = self._node(node, name, shape, sym, values)
        finally:
            self.trace.depth -= 1
        if self.concrete:
            label = node.op.kind if isinstance(node, LayerNode) else node_label(node)
            line = f"  {node.origin.path or name}: {label} -> {format_shape(step.shape)}"
            self.trace.record(line)
        return step

    def _node(self, node: Node, name: str, shape, sym, values) -> Step:
        if isinstance(node, LayerNode):
            return self.layer(node, name, shape, sym)
        if isinstance(node, CallNode):
            return self.call(node, name, shape, sym)
        if isinstance(node, JoinNode):
            shapes = [self.read(values, r, node) for r in node.reads]
            out = self.join(
                node, node.mode, list(node.reads), [s for s, _ in shapes], "input", None
            )
            out_sym = None
            if self.symbolic:
                out_sym = join_shapes(node.mode, [s for _, s in shapes])
            first = shapes[0]
            return Step(name, "join", node, first[0], out, sym_in=first[1], sym=out_sym)
        return self.branches(node, name, shape, sym)

    def layer(self, node: LayerNode, name: str, shape, sym) -> Step:
        kind = node.op.kind
        step = Step(name, kind, node, shape, None, sym_in=sym)
        written = {k: v for k, v in node.op if has_expr(v)}  # fields written $name
        if self.concrete:
            op = node.op.model_copy(
                update={k: substitute(v, self.values) for k, v in written.items()}
            )
            if node.deferred:
                op = self.revalidate(node, op)
            try:
                step.shape = SHAPE_RULES[kind](op, shape)
            except ShapeProblem as problem:
                raise self.trace.error(problem, node.origin, shape) from None
            step.params, step.macs = COUNT_RULES[kind](op, shape, step.shape)
            step.calls = tuple(LOWERING[kind](op, shape))
        if self.symbolic:
            symbols = written
            if self.env is not None:
                symbols = {k: bound(v, self.env) for k, v in symbols.items()}
            if self.top:
                symbols = {
                    k: evaluate(substitute(v, self.a.baked), self.sym_inputs)
                    for k, v in symbols.items()
                }
            if self.concrete and sym == shape and not any(map(has_expr, symbols.values())):
                step.sym, step.sym_calls = step.shape, step.calls  # nothing symbolic here
            else:
                op = node.op.model_copy(update=symbols)
                try:
                    step.sym = SHAPE_RULES[kind](op, sym)
                except ShapeProblem as problem:
                    raise self.trace.error(problem, node.origin, sym) from None
                step.sym_calls = tuple(LOWERING[kind](op, sym))
        return step

    def call(self, node: CallNode, name: str, shape, sym) -> Step:
        step = Step(name, node.block, node, shape, None, sym_in=sym)
        if self.concrete:
            self.trace.calls.append(node)
            inner = Walk(self.a, self.trace, concrete=True, symbolic=False, top=False)
            arguments = self.a.bind_arguments(node, self.values, len(shape))
            inner.values = {**arguments, **input_names(shape)}
            step.shape, _, step.children = inner.body(node.body, name, shape, None, {})
            self.trace.calls.pop()
            total(step)
        if self.symbolic:
            spatial = _spatial(shape if self.top else sym)
            channels = shape[0] if self.top and len(shape) == 3 else None
            values = self.argument_values(node)
            step.cls = self.a.class_for(node, len(sym), spatial, values, channels)
            out = self.a.call_sym(step.cls, node, sym, self.top, self.env)
            if self.top and out is not None and None in out:
                # not expressible with the spec's params: the concrete size
                out = tuple(s if d is None else d for d, s in zip(out, step.shape))
            step.sym = out
        return step

    # -- conditions, reads and sizes known late ------------------------------
    def decide(self, when: Condition, key: Any) -> bool:
        """Whether a node (or branch) is used: its ``if:`` computed with this
        use's values. A symbolic walk takes what the concrete walk of the same
        use decided (``key``: the node's identity)."""
        if not self.concrete:
            return self.a.outcomes[key]
        try:
            value = evaluate_condition(when.expr, self.lookup)
        except ExprError as problem:
            raise ShapeError(self.located(when, problem)) from None
        self.a.outcomes[key] = value
        return value

    def lookup(self, ref: Any) -> Any:
        if ref.name in self.values:
            return self.values[ref.name]
        raise ExprError(f"${ref.name} is not known here: the input is not an image", ref.at)

    def located(self, when: Condition, problem: ExprError) -> Diagnostic:
        origin = when.origin
        column = origin.column + problem.offset if origin.column is not None else None
        return Diagnostic(
            str(problem),
            file=origin.file,
            line=origin.line,
            column=column,
            path=origin.path or None,
            hint=problem.hint,
            notes=self.input_note(),
        )

    def input_note(self) -> tuple[str, ...]:
        """The note of an error found once the input's size is known."""
        sizes = [f"${k} = {v}" for k, v in self.values.items() if k.startswith("in_")]
        return (f"with {', '.join(sizes)}",) if sizes else ()

    def read(self, values: dict, name: str, node: Node) -> tuple[Any, Any]:
        if name in values:
            return values[name]
        problem = ShapeProblem(
            f"from: reads {name!r}, which its if: condition leaves out here",
            "give the value a condition that holds whenever it is read",
        )
        raise self.trace.error(problem, node.origin, None)

    def revalidate(self, node: LayerNode, op: Any) -> Any:
        """A layer with fields known only now (``$in_channels``), validated."""
        data = {name: getattr(op, name) for name in type(op).model_fields}
        try:
            return type(op).model_validate(data)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = dict(node.deferred)
            field = error["loc"][0] if error["loc"] else None
            origin = where.get(field, node.origin)  # type: ignore[call-overload]
            hint = None
            if isinstance(error.get("input"), float):
                hint = ROUNDING_HINT
            raise ShapeError(
                Diagnostic(
                    error["msg"],
                    file=origin.file,
                    line=origin.line,
                    column=origin.column,
                    path=origin.path or None,
                    hint=hint,
                    notes=self.input_note(),
                )
            ) from None

    def argument_values(self, node: CallNode) -> dict[str, Any] | None:
        """Concrete values of every parameter of this use, when known here."""
        known = self.values if self.top else self.env or {}
        definition = self.a.graph.definitions[node.block]
        result: dict[str, Any] = {}
        for param, value in zip(definition.params, node.arguments):
            value = bound(value, known)
            if has_expr(value):
                return None
            result.update(zip(param, value) if isinstance(param, tuple) else [(param, value)])
        return result

    def branches(self, node: BranchNode, name: str, shape, sym) -> Step:
        children = []
        outs: dict[str, Shape] = {}
        syms = []
        for branch, nodes in node.branches.items():
            when = node.conditions.get(branch)
            if when is not None and not self.decide(when, (id(node), branch)):
                continue  # this branch's if: condition is false for this use
            label = f"{name}.{branch}"
            out, out_sym, steps = self.body(nodes, label, shape, sym, {INPUT: (shape, sym)})
            outs[branch] = out  # type: ignore[assignment]
            syms.append(out_sym)
            child = Step(label, "branch", None, shape, out, children=steps, sym_in=sym, sym=out_sym)
            child.branch = branch
            children.append(total(child))
        out = self.join(node, node.node, list(outs), list(outs.values()), "branch", shape)
        out_sym = join_shapes(node.node, syms) if self.symbolic else None
        step = Step(name, node.node, node, shape, out, children=children, sym_in=sym, sym=out_sym)
        return total(step)

    def join(
        self, node: Node, mode: str, names: list[str], shapes: list, what: str, received
    ) -> Any:
        if not self.concrete:
            return None
        try:
            return join_shapes(mode, shapes, names=names, what=what)
        except ShapeProblem as problem:
            raise self.trace.error(problem, node.origin, received) from None


def bound(value: Any, env: dict[str, Any]) -> Any:
    """``value`` with the names ``env`` knows replaced (a name alone takes any
    value, strings included); other names stay: a class's own arguments."""
    if isinstance(value, tuple):
        return tuple(bound(v, env) for v in value)
    if isinstance(value, Expr):
        atom = value.atom
        if isinstance(atom, str):  # one name (not an Apply such as c // 2)
            return env.get(atom, value)  # any value, strings included
        # names env lacks are the class's own parameters: they stay names
        return evaluate(value, env)
    return value


def _spatial(shape: Shape) -> tuple | None:
    """The sizes a generated class may be written for: an image's height and
    width, or the length of tokens."""
    return {3: shape[1:], 2: shape[:1]}.get(len(shape))


def input_names(shape: Shape | None) -> dict[str, Any]:
    """The ``$in_...`` values of a block that receives ``shape``."""
    if not shape:
        return {}
    if len(shape) == 3:
        return {"in_channels": shape[0], "in_height": shape[1], "in_width": shape[2]}
    return {"in_channels": shape[-1]}


def evaluate_condition(expr: Any, lookup: Any) -> bool:
    return truth(evaluate_expression(expr, lookup), expr)


def node_label(node: Node) -> str:
    if isinstance(node, CallNode):
        return node.block
    if isinstance(node, JoinNode):
        return node.mode
    return node.node


def total(step: Step) -> Step:
    step.params = sum(c.params for c in step.children)
    step.macs = sum(c.macs for c in step.children)
    return step
