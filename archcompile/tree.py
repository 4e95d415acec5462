"""The annotated tree: the IR walked once, every node with its shapes, counts
and lowering.

:func:`annotate` is the only walker of the compiler. For each node it applies
the shape rule (``SHAPE_RULES``), the count rule (``COUNT_RULES``) and the
lowering (``LOWERING``) exactly once, and records the answers on a
:class:`Step`. ``archc shapes`` prints the steps, the live backend
instantiates their module calls, the source backend prints them; none of them
derives a shape again.

With ``source=True`` (for generated source) the walk also keeps, at the top
level, the *symbolic* view of each step (channels written with the spec's
parameters, ``num_classes``), and each generated class (one per distinct
structure of a ``define``) is walked once with symbolic inputs
(``in_channels x H x W`` and the block's parameters): its steps are the
class body the source backend prints. A call's symbolic output outside its
class is the class's output formula with the call's arguments substituted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from archcompile.errors import Diagnostic, ShapeError
from archcompile.ir import (
    INPUT,
    Block,
    BranchNode,
    CallNode,
    Graph,
    JoinNode,
    LayerNode,
    Node,
    Origin,
)
from archcompile.lowering import LOWERING, ModuleCall
from archcompile.shapes import (
    COUNT_RULES,
    SHAPE_RULES,
    Shape,
    ShapeProblem,
    format_shape,
    join_shapes,
)
from archcompile.symbolic import Expr, bind, substitute


@dataclass
class Step:
    """One annotated node: a block, layer, call, branch or join.

    ``shape`` is the concrete output (without batch). At the top level of a
    source tree, ``sym`` is the same shape written with the spec's parameters
    and ``sym_calls`` the lowering with them; inside a generated class both
    are written with the class's parameters (and ``shape`` is None).
    """

    name: str  # display path: block3[0].branch2[1]
    kind: str  # layer kind, definition name, "concat"/"add", "branch", "join", "block"
    node: Node | Block | None
    in_shape: Shape | None
    shape: Shape | None
    params: int = 0
    macs: int = 0  # per image
    calls: tuple[ModuleCall, ...] = ()  # what a layer lowers to (concrete)
    children: list[Step] = field(default_factory=list)
    sym_in: Shape | None = None
    sym: Shape | None = None
    sym_calls: tuple[ModuleCall, ...] = ()
    cls: GeneratedClass | None = None  # calls: the class generated for them

    def walk(self, depth: int, level: int = 1) -> Iterator[tuple[int, Step]]:
        yield level, self
        if level < depth:
            for child in self.children:
                yield from child.walk(depth, level + 1)


@dataclass
class GeneratedClass:
    """One class of generated source: a ``define`` with one structure."""

    definition: str
    key: tuple
    rank: int  # 3: takes an image (in_channels); 1: a vector (in_features)
    steps: list[Step] = field(default_factory=list)
    sym_in: Shape = ()
    sym: Shape = ()
    uses: list[CallNode] = field(default_factory=list)
    #: the concrete arguments of every use (for type hints)
    values: list[tuple] = field(default_factory=list)
    #: parameters fixed in this class, with their values (not ``__init__`` arguments)
    fixed: dict[str, Any] = field(default_factory=dict)
    #: the input height and width the class is written for, if it needs them
    spatial: tuple[int, int] | None = None
    name: str = ""  # set once every class is known (variants need suffixes)


@dataclass
class Tree:
    """The whole network, annotated."""

    graph: Graph
    blocks: list[Step]
    classes: list[GeneratedClass]  # dependencies first; empty unless source=True
    source: bool

    @property
    def total_params(self) -> int:
        return sum(b.params for b in self.blocks)

    @property
    def macs_per_image(self) -> int:
        return sum(b.macs for b in self.blocks)

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def input(self) -> tuple[int, int, int]:
        return self.graph.input

    def block(self, name: str) -> Step:
        return next(b for b in self.blocks if b.name == name)

    def to_json(self, spec: str, batch: int = 1, depth: int = 1) -> dict[str, Any]:
        """What ``archc shapes --json`` prints; steps nest to ``depth``."""

        def entry(step: Step, level: int) -> dict[str, Any]:
            item: dict[str, Any] = {
                "name": step.name,
                "kind": step.kind,
                "shape": [batch, *step.shape],  # type: ignore[misc]
                "params": step.params,
                "macs": step.macs * batch,
            }
            if level < depth and step.children:
                item["children"] = [entry(c, level + 1) for c in step.children]
            return item

        return {
            "schema": 1,
            "spec": spec,
            "name": self.name,
            "input": [batch, *self.input],
            "outputs": [
                {
                    "name": o.name,
                    "shape": [batch, *self.block(o.name).shape],  # type: ignore[misc]
                    "training_only": o.training_only,
                    "loss_weight": o.loss_weight,
                }
                for o in self.graph.outputs
            ],
            "blocks": [entry(b, 1) for b in self.blocks],
            "total_params": self.total_params,
            "total_macs": self.macs_per_image * batch,
        }


def class_input(rank: int) -> Shape:
    if rank == 3:
        return (Expr.name("in_channels"), Expr.name("H"), Expr.name("W"))
    return (Expr.name("in_features"),)


def structure(nodes: list[Node]) -> tuple:
    """What makes two uses of a definition the same generated class: every node
    with its symbolic fields (values written with the block's parameters) and
    its fixed ones."""
    key: list[Any] = []
    for node in nodes:
        wiring = (node.name, node.reads)
        if isinstance(node, LayerNode):
            key.append(("layer", wiring, node.op))
        elif isinstance(node, CallNode):
            key.append(("call", wiring, node.block, node.arguments, structure(node.body)))
        elif isinstance(node, BranchNode):
            branches = tuple((n, structure(b)) for n, b in node.branches.items())
            key.append((node.node, wiring, node.singles, branches))
        else:
            key.append(("join", wiring, node.mode))
    return tuple(key)


class _NeedsSize(Exception):
    """A class needs the concrete size of its input, not known where it is used."""


def _frozen(values: dict[str, Any] | None) -> tuple:
    return tuple(sorted((values or {}).items(), key=lambda item: item[0]))


class _Trace:
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


class _Annotator:
    """The walker. ``concrete``: compute real shapes and counts (the instance
    tree); ``symbolic``: compute the symbolic view (source trees)."""

    def __init__(self, graph: Graph, source: bool) -> None:
        self.graph = graph
        self.source = source
        self.classes: dict[tuple, GeneratedClass] = {}
        self.order: list[GeneratedClass] = []
        self.structures: dict[int, tuple] = {}  # by id of a CallNode (the IR outlives us)
        #: concrete arguments of every use, by (block, rank, structure)
        self.argument_values: dict[tuple, list[tuple]] = {}
        #: spec params fixed in generated source (they change sizes or structure)
        self.baked = {n: graph.params[n] for n in graph.structural_params}

    # -- the whole graph ------------------------------------------------------
    def graph_steps(self) -> list[Step]:
        values: dict[str, tuple[Shape, Shape | None]] = {INPUT: (self.graph.input,) * 2}
        previous = INPUT
        blocks = []
        for block in self.graph.blocks:
            trace = _Trace()
            shape, sym = values[previous]
            trace.lines.append(f"  {block.name} receives {format_shape(shape)}")
            walker = _Walk(self, trace, concrete=True, symbolic=self.source, top=True)
            step = walker.body_step(block.name, "block", block, block.body, shape, sym, values)
            values[block.name] = (step.shape, step.sym)  # type: ignore[assignment]
            previous = block.name
            blocks.append(step)
        return blocks

    # -- generated classes ----------------------------------------------------
    def class_for(
        self,
        node: CallNode,
        rank: int,
        spatial: tuple | None = None,
        values: dict[str, Any] | None = None,
    ) -> GeneratedClass:
        """The class of this call's structure, walked once.

        Parameters that decide the structure are fixed in the class (their
        values are part of its key). A class whose modules need a size it
        cannot state (a ``flatten`` then a ``linear``) is written for the
        height and width of its use (``spatial``), and if that is not enough,
        with every parameter fixed (``values``); when neither is known here,
        the enclosing class is fixed in turn (:class:`_NeedsSize`).
        """
        fixed = self.fixed_values(node)
        key = (node.block, rank, self.structure(node), _frozen(fixed))
        cls = self.classes.get(key)
        if cls is None:
            try:
                cls = self._walk_class(node, key, rank, class_input(rank), fixed)
            except _NeedsSize:
                cls = None
            if cls is None or _needs_size(cls.steps):
                cls = self._sized(node, key, rank, spatial, values, fixed)
            self.classes.setdefault(cls.key, cls)
        cls.uses.append(node)
        return cls

    def _sized(self, node, key, rank, spatial, values, fixed) -> GeneratedClass:
        if rank != 3 or spatial is None or not all(isinstance(d, int) for d in spatial):
            raise _NeedsSize
        sized_in = (Expr.name("in_channels"), *spatial)
        for attempt in (fixed, values):
            if attempt is None:
                break
            sized_key = (*key, tuple(spatial), _frozen(attempt))
            if sized_key in self.classes:
                return self.classes[sized_key]
            try:
                cls = self._walk_class(node, sized_key, rank, sized_in, attempt)
            except _NeedsSize:
                continue
            if not _needs_size(cls.steps):
                cls.spatial = tuple(spatial)
                return cls
        raise _NeedsSize

    def fixed_values(self, node: CallNode) -> dict[str, Any]:
        """Values of the parameters a definition fixes per class (the whole
        destructured group of one that decides its structure)."""
        definition = self.graph.definitions[node.block]
        fixed: dict[str, Any] = {}
        for param, value in zip(definition.params, node.arguments):
            leaves = param if isinstance(param, tuple) else (param,)
            if set(leaves) & definition.baked:
                fixed.update(zip(leaves, value) if isinstance(param, tuple) else [(param, value)])
        return fixed

    def _walk_class(
        self, node: CallNode, key: tuple, rank: int, sym_in: Shape, fixed: dict[str, Any]
    ) -> GeneratedClass:
        cls = GeneratedClass(node.block, key, rank, sym_in=sym_in, fixed=fixed)
        walker = _Walk(self, _Trace(), concrete=False, symbolic=True, top=False)
        walker.env = fixed
        values = {INPUT: (None, cls.sym_in)}
        _, sym, cls.steps = walker.body(node.body, node.block, None, cls.sym_in, values)
        cls.sym = sym  # type: ignore[assignment]
        self.order.append(cls)  # after the classes it uses
        return cls

    def bind_arguments(self, node: CallNode, values: dict[str, Any], rank: int) -> dict[str, Any]:
        """The values of a call's parameters, from its arguments as written; kept
        per class for the type hints of its ``__init__``."""
        definition = self.graph.definitions[node.block]
        given = tuple(substitute(a, values) for a in node.arguments)
        key = (node.block, rank, self.structure(node))
        self.argument_values.setdefault(key, []).append(given)
        bound: dict[str, Any] = {}
        for param, value in zip(definition.params, given):
            bound.update(zip(param, value) if isinstance(param, tuple) else [(param, value)])
        return bound

    def structure(self, node: CallNode) -> tuple:
        key = self.structures.get(id(node))
        if key is None:
            key = self.structures[id(node)] = structure(node.body)
        return key

    def call_sym(
        self, cls: GeneratedClass, node: CallNode, sym_in: Shape, top: bool, env: dict | None
    ) -> Shape | None:
        """A call's output outside its class: the class formula, bound."""
        definition = self.graph.definitions[node.block]
        names: dict[str, Any] = {"in_channels": sym_in[0], "in_features": sym_in[0]}
        if len(sym_in) == 3:
            names.update(H=sym_in[1], W=sym_in[2])
        arguments: dict[str, Any] = {}
        for param, value in zip(definition.params, node.arguments):
            value = substitute(value, self.baked) if top else _bound(value, env or {})
            arguments.update(zip(param, value) if isinstance(param, tuple) else [(param, value)])
        out = tuple(bind(dim, {**names, **arguments}) for dim in cls.sym)
        if None in out:
            # the class cannot state it (a size set by a parameter, such as a
            # kernel): walk this use's body with its arguments in place
            walker = _Walk(self, _Trace(), concrete=False, symbolic=True, top=False)
            walker.env = arguments
            out = walker.body(node.body, node.block, None, sym_in, {INPUT: (None, sym_in)})[1]
        return out


class _Walk:
    def __init__(
        self, annotator: _Annotator, trace: _Trace, concrete: bool, symbolic: bool, top: bool
    ) -> None:
        self.a = annotator
        self.trace = trace
        self.concrete = concrete
        self.symbolic = symbolic
        self.top = top  # symbolic over the spec's params (else: a class's params)
        #: values of the enclosing block's parameters, when a use is walked inline
        self.env: dict[str, Any] | None = None
        #: concrete values of the names in scope (spec params, or a call's arguments)
        self.values: dict[str, Any] = annotator.graph.params

    def body_step(self, name, kind, owner, nodes, shape, sym, values) -> Step:
        out, out_sym, children = self.body(nodes, name, shape, sym, values)
        return _total(
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
            if node.reads and not isinstance(node, JoinNode):
                shape, sym = values[node.reads[0]]
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
            label = node.op.kind if isinstance(node, LayerNode) else _label(node)
            line = f"  {node.origin.path or name}: {label} -> {format_shape(step.shape)}"
            self.trace.record(line)
        return step

    def _node(self, node: Node, name: str, shape, sym, values) -> Step:
        if isinstance(node, LayerNode):
            return self.layer(node, name, shape, sym)
        if isinstance(node, CallNode):
            return self.call(node, name, shape, sym)
        if isinstance(node, JoinNode):
            shapes = [values[r] for r in node.reads]
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
        written = {k: v for k, v in node.op if _symbolic(v)}  # fields written $name
        if self.concrete:
            op = node.op.model_copy(
                update={k: substitute(v, self.values) for k, v in written.items()}
            )
            try:
                step.shape = SHAPE_RULES[kind](op, shape)
            except ShapeProblem as problem:
                raise self.trace.error(problem, node.origin, shape) from None
            step.params, step.macs = COUNT_RULES[kind](op, shape, step.shape)
            step.calls = tuple(LOWERING[kind](op, shape))
        if self.symbolic:
            symbols = written
            if self.env is not None:
                symbols = {k: _bound(v, self.env) for k, v in symbols.items()}
            if self.top:
                symbols = {k: substitute(v, self.a.baked) for k, v in symbols.items()}
            if self.concrete and sym == shape and not any(map(_symbolic, symbols.values())):
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
            inner = _Walk(self.a, self.trace, concrete=True, symbolic=False, top=False)
            inner.values = self.a.bind_arguments(node, self.values, len(shape))
            step.shape, _, step.children = inner.body(node.body, name, shape, None, {})
            self.trace.calls.pop()
            _total(step)
        if self.symbolic:
            spatial = (shape if self.top else sym)[1:] if len(sym) == 3 else None
            step.cls = self.a.class_for(node, len(sym), spatial, self.argument_values(node))
            out = self.a.call_sym(step.cls, node, sym, self.top, self.env)
            if self.top and out is not None and None in out:
                # not expressible with the spec's params: the concrete size
                out = tuple(s if d is None else d for d, s in zip(out, step.shape))
            step.sym = out
        return step

    def argument_values(self, node: CallNode) -> dict[str, Any] | None:
        """Concrete values of every parameter of this use, when known here."""
        known = self.values if self.top else self.env or {}
        definition = self.a.graph.definitions[node.block]
        result: dict[str, Any] = {}
        for param, value in zip(definition.params, node.arguments):
            value = _bound(value, known)
            if _symbolic(value):
                return None
            result.update(zip(param, value) if isinstance(param, tuple) else [(param, value)])
        return result

    def branches(self, node: BranchNode, name: str, shape, sym) -> Step:
        children = []
        outs: dict[str, Shape] = {}
        syms = []
        for branch, nodes in node.branches.items():
            label = f"{name}.{branch}"
            out, out_sym, steps = self.body(nodes, label, shape, sym, {INPUT: (shape, sym)})
            outs[branch] = out  # type: ignore[assignment]
            syms.append(out_sym)
            child = Step(label, "branch", None, shape, out, children=steps, sym_in=sym, sym=out_sym)
            children.append(_total(child))
        out = self.join(node, node.node, list(outs), list(outs.values()), "branch", shape)
        out_sym = join_shapes(node.node, syms) if self.symbolic else None
        step = Step(name, node.node, node, shape, out, children=children, sym_in=sym, sym=out_sym)
        return _total(step)

    def join(
        self, node: Node, mode: str, names: list[str], shapes: list, what: str, received
    ) -> Any:
        if not self.concrete:
            return None
        try:
            return join_shapes(mode, shapes, names=names, what=what)
        except ShapeProblem as problem:
            raise self.trace.error(problem, node.origin, received) from None


def _symbolic(value: Any) -> bool:
    """Written with a ``$name``: an Expr, or a pair holding one."""
    return isinstance(value, Expr) or isinstance(value, tuple) and any(map(_symbolic, value))


def _bound(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, tuple):
        return tuple(_bound(v, env) for v in value)
    if isinstance(value, Expr):
        if len(value.terms) == 1 and not value.const and value.terms[0][1] == 1:
            return env.get(value.terms[0][0], value)  # any value, strings included
        return bind(value, env)
    return value


def _reachable(blocks: list[Step]) -> set[int]:
    """Ids of the classes the model uses (walks abandoned for a sized class
    may have made others)."""
    seen: set[int] = set()
    stack = list(blocks)
    while stack:
        step = stack.pop()
        stack += step.children
        if step.cls is not None and id(step.cls) not in seen:
            seen.add(id(step.cls))
            stack += step.cls.steps
    return seen


def _needs_size(steps: list[Step]) -> bool:
    """Whether a class body's modules need a size it cannot state symbolically."""

    def unknown(value: Any) -> bool:
        return value is None or isinstance(value, tuple) and any(unknown(v) for v in value)

    for step in steps:
        for call in step.sym_calls:
            if unknown(call.args) or any(unknown(v) for _, v in call.kwargs):
                return True
        if step.cls is not None and (step.sym_in is None or step.sym_in[0] is None):
            return True
        if _needs_size(step.children):
            return True
    return False


def _label(node: Node) -> str:
    if isinstance(node, CallNode):
        return node.block
    if isinstance(node, JoinNode):
        return node.mode
    return node.node


def _total(step: Step) -> Step:
    step.params = sum(c.params for c in step.children)
    step.macs = sum(c.macs for c in step.children)
    return step


def _name_classes(classes: list[GeneratedClass], graph: Graph) -> None:
    """Class names: the definition's (``Inception``); when one definition has
    several structures, each is suffixed with its fixed parameters
    (``StageDepth2``), or numbered when those do not tell them apart."""
    from archcompile.spec.names import class_name

    by_definition: dict[str, list[GeneratedClass]] = {}
    for cls in classes:
        by_definition.setdefault(cls.definition, []).append(cls)
    taken = {class_name(d) for d in by_definition} | {graph.name}
    for definition, variants in by_definition.items():
        base = class_name(definition)
        if len(variants) == 1:
            variants[0].name = base
            continue
        taken.discard(base)
        for cls in variants:
            suffix = _variant_suffix(cls, graph)
            name = base + suffix
            number = 2
            while name in taken:
                name = f"{base}{suffix}V{number}"
                number += 1
            taken.add(name)
            cls.name = name


def _variant_suffix(cls: GeneratedClass, graph: Graph) -> str:
    definition = graph.definitions[cls.definition]
    parts = []
    for param in definition.params:
        for leaf in param if isinstance(param, tuple) else (param,):
            if leaf in cls.fixed:
                text = "".join(ch for ch in str(cls.fixed[leaf]).title() if ch.isalnum())
                parts.append(leaf.title().replace("_", "") + text)
    if cls.spatial is not None:
        parts.append("At{}x{}".format(*cls.spatial))
    if not parts:
        parts.append("Image" if cls.rank == 3 else "Vector")
    return "".join(parts)


def annotate(graph: Graph, source: bool = False) -> Tree:
    """The annotated tree of ``graph``; raises :class:`ShapeError`.

    ``source=True`` adds the symbolic views and the generated classes that the
    source backend prints.
    """
    annotator = _Annotator(graph, source)
    blocks = annotator.graph_steps()
    used = _reachable(blocks)
    annotator.order = [cls for cls in annotator.order if id(cls) in used]
    for cls in annotator.order:
        cls.values = annotator.argument_values.get(cls.key[:3], [])
    if source:
        _name_classes(annotator.order, graph)
    return Tree(graph, blocks, annotator.order, source)


#: the report ``archc shapes`` prints is the annotated tree itself
ShapeReport = Tree

__all__ = ["GeneratedClass", "ShapeReport", "Step", "Tree", "annotate", "class_input", "structure"]
