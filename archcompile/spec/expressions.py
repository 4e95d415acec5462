"""Spec expressions: ``$c * 4``, ``max($c // 16, 8)``, ``$stride == 1 and $in_channels == $out``.

A small grammar of archc's own, read by a precedence-climbing parser into
the nodes below; nothing is ever handed to Python's ``eval``. From loosest to
tightest: ``or``, ``and``, ``not``, comparisons (``== != < <= > >=``), ``+ -``,
``* / // %``, unary ``-``; atoms are numbers, ``$names``, ``true``/``false``,
parenthesized expressions and calls of :data:`~archcompile.symbolic.FUNCTIONS`.

Every node keeps its column in the text, so that a problem (an unknown name,
a division by zero, a float where a count is needed) is reported at the
exact character. :func:`evaluate` computes a node with the builders of
:mod:`archcompile.symbolic`: numbers where the names have numbers, symbols
(for generated source) where they have symbols.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archcompile import symbolic as S

MAX_LENGTH = 500

#: the hint of a decimal where an integer is needed
ROUNDING_HINT = "round it explicitly: int(...), round(...) or make_divisible(...)"


class ExprError(Exception):
    """A problem in an expression, at ``offset`` (0-based) in its text."""

    def __init__(self, message: str, offset: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True)
class Node:
    at: int  # offset of the node's first character


@dataclass(frozen=True)
class Num(Node):
    value: int | float | bool


@dataclass(frozen=True)
class Ref(Node):
    name: str


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # arithmetic, comparison, "and", "or"
    left: Node
    right: Node
    op_at: int


@dataclass(frozen=True)
class Call(Node):
    fn: str
    args: tuple[Node, ...]


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?|\.\d+)"
    r"|(?P<ref>\$[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>//|==|!=|<=|>=|[-+*/%()<>,]))"
)
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
_WORDS = ("and", "or", "not", "true", "false")


def looks_like(text: str) -> bool:
    """Whether a string in a spec is meant as an expression: it names a
    ``$parameter`` or has parentheses (``max(...)``; and what only looks like
    one, ``__import__('os')``, is refused at its column rather than passed on
    as a string)."""
    return "$" in text or "(" in text


def tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) tokens, ending with ("end", "", len(text))."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"an expression is limited to {MAX_LENGTH} characters", MAX_LENGTH)
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            # reported when the parser gets here: earlier problems come first
            at = len(text) - len(text[pos:].lstrip())
            tokens.append(("error", text[at], at))
            break
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.index]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.index]
        if token[0] == "error":
            char, at = token[1], token[2]
            hint = "a $ is followed by a parameter name: $channels" if char == "$" else None
            raise ExprError(f"unexpected {char!r} in an expression", at, hint)
        self.index += 1
        return token

    def expect(self, op: str) -> None:
        kind, text, at = self.take()
        if text != op or kind not in ("op", "word"):
            found = "the end" if kind == "end" else repr(text)
            raise ExprError(f"expected {op!r} but found {found}", at)

    def parse(self) -> Node:
        node = self.boolean("or")
        kind, text, at = self.take() if self.peek[0] == "error" else self.peek
        if kind != "end":
            raise ExprError(f"unexpected {text!r} in an expression", at)
        return node

    def boolean(self, op: str) -> Node:
        inner = (lambda: self.boolean("and")) if op == "or" else self.negation
        node = inner()
        while self.peek[0] == "word" and self.peek[1] == op:
            at = self.take()[2]
            node = Binary(node.at, op, node, inner(), at)
        return node

    def negation(self) -> Node:
        if self.peek[0] == "word" and self.peek[1] == "not":
            at = self.take()[2]
            return Unary(at, "not", self.negation())
        return self.comparison()

    def comparison(self) -> Node:
        node = self.arithmetic(("+", "-"))
        if self.peek[0] == "op" and self.peek[1] in _COMPARE:
            _, op, at = self.take()
            node = Binary(node.at, op, node, self.arithmetic(("+", "-")), at)
            if self.peek[1] in _COMPARE:
                raise ExprError(
                    "comparisons do not chain here", self.peek[2], "join them with 'and'"
                )
        return node

    def arithmetic(self, ops: tuple[str, ...]) -> Node:
        tighter: Callable[[], Node]
        if ops == ("+", "-"):
            tighter = lambda: self.arithmetic(("*", "/", "//", "%"))
        else:
            tighter = self.unary
        node = tighter()
        while self.peek[0] == "op" and self.peek[1] in ops:
            _, op, at = self.take()
            node = Binary(node.at, op, node, tighter(), at)
        return node

    def unary(self) -> Node:
        if self.peek[1] in ("-", "+") and self.peek[0] == "op":
            _, op, at = self.take()
            operand = self.unary()
            return operand if op == "+" else Unary(at, "-", operand)
        return self.atom()

    def atom(self) -> Node:
        kind, text, at = self.take()
        if kind == "number":
            value = float(text) if any(c in text for c in ".eE") else int(text)
            return Num(at, value)
        if kind == "ref":
            return Ref(at, text[1:])
        if kind == "op" and text == "(":
            node = self.boolean("or")
            self.expect(")")
            return node
        if kind == "word":
            if text in ("true", "false"):
                return Num(at, text == "true")
            if text in S.FUNCTIONS:
                return self.call(text, at)
            if text in _WORDS:
                raise ExprError(f"{text!r} needs a value before it", at)
            known = ", ".join(S.FUNCTIONS)
            hint = f"the functions are {known}"
            if not text.startswith("_"):
                hint = f"a parameter is written ${text}; {hint}"
            raise ExprError(f"unknown name {text!r}", at, hint)
        found = "the end of the expression" if kind == "end" else repr(text)
        raise ExprError(f"expected a value but found {found}", at)

    def call(self, fn: str, at: int) -> Node:
        if self.peek[1] != "(":
            raise ExprError(f"{fn} is a function: write {fn}(...)", at)
        self.take()
        args: list[Node] = []
        if self.peek[1] != ")":
            args.append(self.boolean("or"))
            while self.peek[1] == ",":
                self.take()
                args.append(self.boolean("or"))
        self.expect(")")
        low, high = S.FUNCTIONS[fn][0]
        if not low <= len(args) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            raise ExprError(f"{fn} takes {wanted} arguments, got {len(args)}", at)
        return Call(at, fn, tuple(args))


def parse(text: str) -> Node:
    """The expression of ``text``; raises :class:`ExprError`."""
    return _Parser(text).parse()


def references(node: Node) -> list[Ref]:
    """Every ``$name`` of an expression, in order."""
    if isinstance(node, Ref):
        return [node]
    if isinstance(node, Unary):
        return references(node.operand)
    if isinstance(node, Binary):
        return references(node.left) + references(node.right)
    if isinstance(node, Call):
        return [r for a in node.args for r in references(a)]
    return []


class Deferred:
    """A value known only once shapes are: ``$in_channels`` while a spec is
    expanded. Whatever is computed from it is deferred too."""

    def __repr__(self) -> str:
        return "<known with the input's shape>"


DEFERRED = Deferred()


def evaluate(node: Node, lookup: Callable[[Ref], Any]) -> Any:
    """The value of ``node``: numbers and booleans, Exprs for symbolic names,
    :data:`DEFERRED` when a name is. ``lookup`` gives each ``$name``'s value."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        return lookup(node)
    if isinstance(node, Unary):
        value = evaluate(node.operand, lookup)
        if value is DEFERRED:
            return value
        if node.op == "not":
            return not truth(value, node.operand)
        return S.negate(_number(value, node.operand, "-"))
    if isinstance(node, Binary):
        return _binary(node, lookup)
    return _call(node, lookup)  # type: ignore[arg-type]


def _call(node: Call, lookup: Callable[[Ref], Any]) -> Any:
    args = [evaluate(a, lookup) for a in node.args]
    if any(a is DEFERRED for a in args):
        return DEFERRED
    return S.apply(node.fn, [_number(a, n, node.fn) for a, n in zip(args, node.args)])


def _binary(node: Binary, lookup: Callable[[Ref], Any]) -> Any:
    left = evaluate(node.left, lookup)
    if node.op in ("and", "or") and left is not DEFERRED:
        if truth(left, node.left) == (node.op == "or"):
            return node.op == "or"
        right = evaluate(node.right, lookup)
        return right if right is DEFERRED else truth(right, node.right)
    right = evaluate(node.right, lookup)
    if left is DEFERRED or right is DEFERRED:
        return DEFERRED
    a = _number(left, node.left, node.op)
    b = _number(right, node.right, node.op)
    if node.op in _COMPARE:
        if isinstance(a, S.Expr) or isinstance(b, S.Expr):
            raise ExprError("a comparison needs known values here", node.op_at)
        return _compare(node.op, a, b)
    if node.op == "+":
        return S.add(a, b)
    if node.op == "-":
        return S.add(a, S.negate(b))
    if node.op == "*":
        return S.times(a, b)
    try:
        return S.divide(node.op, a, b)
    except S.DivisionByZero:
        raise ExprError("division by zero", node.op_at) from None


def _compare(op: str, a: Any, b: Any) -> bool:
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def _number(value: Any, node: Node, op: str) -> Any:
    if isinstance(value, bool):
        raise ExprError(f"{op!r} needs a number, not a condition", node.at)
    if S.is_number(value) or isinstance(value, S.Expr):
        return value
    raise ExprError(f"{op!r} needs a number, got {_describe(value)}", node.at)


def truth(value: Any, node: Node) -> bool:
    """A condition's value: true or false, else an error at ``node``."""
    if isinstance(value, bool):
        return value
    raise ExprError(
        f"a condition must be true or false, got {_describe(value)}",
        node.at,
        "compare it: $stride == 1",
    )


def _describe(value: Any) -> str:
    if isinstance(value, S.Expr):
        return f"the symbolic value {value.render()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return repr(value)
