"""The annotator: walks a whole graph once (:mod:`archcompile.walk`) and
finds the generated classes, one per distinct structure of a ``define``,
each walked once with symbolic inputs.
"""

from __future__ import annotations

from typing import Any

from archcompile.ir import INPUT, CallNode, Graph
from archcompile.shapes import Shape, format_shape
from archcompile.symbolic import Expr, bind, substitute
from archcompile.tree import GeneratedClass, Step, class_input, class_width, structure
from archcompile.walk import Trace, Walk, bound, input_names

#: the sizes in a class's input shape that are not arguments of the class
SIZE_NAMES = frozenset({"H", "W", "L"})


class NeedsSize(Exception):
    """A class needs the concrete size of its input, not known where it is used."""


def frozen(values: dict[str, Any] | None) -> tuple:
    return tuple(sorted((values or {}).items(), key=lambda item: item[0]))


class Annotator:
    """The walker. ``concrete``: compute real shapes and counts (the instance
    tree); ``symbolic``: compute the symbolic view (source trees)."""

    def __init__(self, graph: Graph, source: bool) -> None:
        self.graph = graph
        self.source = source
        self.classes: dict[tuple, GeneratedClass] = {}
        self.order: list[GeneratedClass] = []
        self.structures: dict[int, tuple] = {}  # by id of a CallNode (the IR outlives us)
        #: concrete arguments of every use: (call, rank, values)
        self.uses: list[tuple[CallNode, int, tuple]] = []
        #: spec params fixed in generated source (they change sizes or structure)
        self.baked = {n: graph.params[n] for n in graph.structural_params}
        #: what each ``if:`` decided, by node (or (node, branch)) identity
        self.outcomes: dict[Any, bool] = {}

    # -- the whole graph ------------------------------------------------------
    def graph_steps(self) -> list[Step]:
        values: dict[str, tuple[Shape, Shape | None]] = {INPUT: (self.graph.input,) * 2}
        previous = INPUT
        blocks = []
        for block in self.graph.blocks:
            trace = Trace()
            shape, sym = values[previous]
            trace.lines.append(f"  {block.name} receives {format_shape(shape)}")
            walker = Walk(self, trace, concrete=True, symbolic=self.source, top=True)
            walker.values = {**self.graph.params, **input_names(shape)}
            walker.sym_inputs = input_names(sym)
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
        the enclosing class is fixed in turn (:class:`NeedsSize`).
        """
        fixed = self.fixed_values(node)
        key = (node.block, rank, self.structure(node), frozen(fixed))
        cls = self.classes.get(key)
        if cls is None:
            try:
                cls = self._walk_class(node, key, rank, class_input(rank), fixed)
            except NeedsSize:
                cls = None
            if cls is None or needs_size(cls.steps):
                cls = self._sized(node, key, rank, spatial, values, fixed)
            self.classes.setdefault(cls.key, cls)
        cls.uses.append(node)
        return cls

    def _sized(self, node, key, rank, spatial, values, fixed) -> GeneratedClass:
        if rank == 1 or spatial is None or not all(isinstance(d, int) for d in spatial):
            raise NeedsSize
        if rank == 2:  # tokens: the length is the size a class may need
            sized_in = (*spatial, Expr.name("in_features"))
        else:
            sized_in = (Expr.name("in_channels"), *spatial)
        for attempt in (fixed, values):
            if attempt is None:
                break
            sized_key = (*key, tuple(spatial), frozen(attempt))
            if sized_key in self.classes:
                return self.classes[sized_key]
            try:
                cls = self._walk_class(node, sized_key, rank, sized_in, attempt)
            except NeedsSize:
                continue
            if not needs_size(cls.steps):
                cls.spatial = tuple(spatial)
                return cls
        raise NeedsSize

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
        walker = Walk(self, Trace(), concrete=False, symbolic=True, top=False)
        walker.env = {**fixed, **class_inputs(cls.sym_in)}
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
        self.uses.append((node, rank, given))
        bound: dict[str, Any] = {}
        for param, value in zip(definition.params, given):
            bound.update(zip(param, value) if isinstance(param, tuple) else [(param, value)])
        return bound

    def argument_values(self) -> dict[tuple, list[tuple]]:
        """The concrete arguments of every use, by (block, rank, structure)
        (once the walk is over: a use's structure depends on its ``if:``s)."""
        result: dict[tuple, list[tuple]] = {}
        for node, rank, given in self.uses:
            result.setdefault((node.block, rank, self.structure(node)), []).append(given)
        return result

    def structure(self, node: CallNode) -> tuple:
        key = self.structures.get(id(node))
        if key is None:
            key = self.structures[id(node)] = structure(node.body, self.outcomes)
        return key

    def call_sym(
        self, cls: GeneratedClass, node: CallNode, sym_in: Shape, top: bool, env: dict | None
    ) -> Shape | None:
        """A call's output outside its class: the class formula, bound."""
        definition = self.graph.definitions[node.block]
        names: dict[str, Any] = {"in_channels": sym_in[0], "in_features": class_width(sym_in)}
        if len(sym_in) == 2:
            names["L"] = sym_in[0]
        if len(sym_in) == 3:
            names.update(H=sym_in[1], W=sym_in[2])
        arguments: dict[str, Any] = {}
        for param, value in zip(definition.params, node.arguments):
            value = substitute(value, self.baked) if top else bound(value, env or {})
            arguments.update(zip(param, value) if isinstance(param, tuple) else [(param, value)])
        out = tuple(bind(dim, {**names, **arguments}) for dim in cls.sym)
        if None in out:
            # the class cannot state it (a size set by a parameter, such as a
            # kernel): walk this use's body with its arguments in place
            walker = Walk(self, Trace(), concrete=False, symbolic=True, top=False)
            walker.env = {**arguments, **class_inputs(sym_in)}
            out = walker.body(node.body, node.block, None, sym_in, {INPUT: (None, sym_in)})[1]
        return out


def class_inputs(sym_in: Shape) -> dict[str, Any]:
    """The ``$in_...`` names inside a class: its input channels are its
    ``in_channels`` argument; height and width only where it is written for
    one size (else they cannot be stated, and the class is sized)."""
    names = input_names(sym_in)
    return {k: v if k == "in_channels" or isinstance(v, int) else None for k, v in names.items()}


def reachable(blocks: list[Step]) -> set[int]:
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


def needs_size(steps: list[Step]) -> bool:
    """Whether a class body's modules need a size it cannot state symbolically."""

    def unknown(value: Any) -> bool:
        if isinstance(value, Expr):  # a length or height is not an argument of the class
            return any(name in SIZE_NAMES for name, _ in value.terms)
        return value is None or isinstance(value, tuple) and any(unknown(v) for v in value)

    for step in steps:
        for call in step.sym_calls:
            if unknown(call.args) or any(unknown(v) for _, v in call.kwargs):
                return True
        if step.cls is not None and (step.sym_in is None or class_width(step.sym_in) is None):
            return True
        if needs_size(step.children):
            return True
    return False
