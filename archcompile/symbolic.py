"""Numbers written with names, for generated source and spec expressions.

The generated ``Inception`` class is written once for every use, so the channel
count after its first 1x1 conv is not ``96`` but ``c2_reduce``, and its output
has ``c1 + c2 + c3 + c4`` channels. Shape rules run unchanged on these values:
``Expr`` supports the arithmetic they need (sums, products with numbers) and
anything beyond that yields ``None``, "not expressible", which the code
generator turns into a clear error where it matters.

A spec's own expressions (``$c * 4``, ``max($c // 16, 8)``,
``make_divisible($c * $width, 8)``) go further: the builders below
(:func:`add`, :func:`times`, :func:`apply`...) compute numbers when they can
and otherwise keep the operation as an :class:`Apply` atom of an ``Expr``,
which generated source prints as written (``c // 16``). Shape rules never
build an ``Apply``: only what a spec writes does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Number = int | float


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Apply:
    """An operation on symbolic values that is not linear: ``c // 16``,
    ``max(c, 8)``. ``op`` is a binary operator (``*``, ``/``, ``//``, ``%``)
    or a function of :data:`FUNCTIONS`."""

    op: str
    args: tuple[Any, ...]

    def render(self) -> str:
        if self.op in BINARY:
            left, right = self.args
            return f"{_operand(left, False)} {self.op} {_operand(right, True)}"
        if self.op == "int" and _is_int_call(self.args[0]):
            return render(self.args[0])  # int(round(x)) is round(x) (ruff's RUF046)
        name = "_make_divisible" if self.op == "make_divisible" else self.op
        return f"{name}({', '.join(render(a) for a in self.args)})"

    def names(self) -> set[str]:
        return set().union(*(names(a) for a in self.args))


Atom = str | Apply


@dataclass(frozen=True)
class Expr:
    """``sum(coeff * atom) + const``: atoms are names or :class:`Apply`."""

    terms: tuple[tuple[Atom, Number], ...] = field(default_factory=tuple)
    const: Number = 0

    @staticmethod
    def name(name: str) -> Expr:
        return Expr(((name, 1),))

    @staticmethod
    def of(value: Number | Expr) -> Expr:
        return value if isinstance(value, Expr) else Expr((), value)

    def _combine(self, other: Number | Expr, sign: int) -> Dim:
        other = Expr.of(other)
        terms = dict(self.terms)
        for atom, coeff in other.terms:
            terms[atom] = terms.get(atom, 0) + sign * coeff
        return _normal(terms, self.const + sign * other.const)

    def __add__(self, other: object) -> Dim:
        if isinstance(other, Expr) or is_number(other):
            return self._combine(other, 1)  # type: ignore[arg-type]
        return NotImplemented

    __radd__ = __add__

    def __mul__(self, other: object) -> Dim:
        if is_number(other):
            return _normal({a: c * other for a, c in self.terms}, self.const * other)  # type: ignore[operator]
        return NotImplemented

    __rmul__ = __mul__

    @property
    def atom(self) -> Atom | None:
        """The atom, when the expression is exactly one (``c``, ``c // 2``)."""
        if len(self.terms) == 1 and self.const == 0 and self.terms[0][1] == 1:
            return self.terms[0][0]
        return None

    def render(self) -> str:
        """Python source for the expression, terms in first-use order."""
        parts = []
        for atom, coeff in self.terms:
            text = atom if isinstance(atom, str) else atom.render()
            if coeff != 1 and isinstance(atom, Apply) and atom.op in BINARY:
                text = f"({text})"  # -(c // 2), 4 * (c // 2)
            if abs(coeff) != 1:
                text = f"{abs(coeff)} * {text}"
            parts.append(("-" if coeff < 0 else "+", text))
        if self.const or not parts:
            parts.append(("-" if self.const < 0 else "+", str(abs(self.const))))
        sign, first = parts[0]
        text = ("-" if sign == "-" else "") + first
        return text + "".join(f" {sign} {part}" for sign, part in parts[1:])

    def __str__(self) -> str:
        return self.render()


#: a dimension: known, symbolic, or ``None`` when it cannot be expressed
Dim = int | Expr | None

BINARY = ("*", "/", "//", "%")


def _is_int_call(value: Any) -> bool:
    """A call that gives an int already: ``round(x)``, ``int(x)``, ``_make_divisible(...)``."""
    atom = value.atom if isinstance(value, Expr) else None
    return isinstance(atom, Apply) and atom.op in ("round", "int", "make_divisible")


def _operand(value: Any, right: bool) -> str:
    """An operand of a binary operator, parenthesized where Python needs it."""
    text = render(value)
    if isinstance(value, Expr):
        atom = value.atom
        if atom is None and (len(value.terms) > 1 or value.const or right):
            return f"({text})"
        if isinstance(atom, Apply) and atom.op in BINARY and right:
            return f"({text})"
    elif is_number(value) and value < 0:
        return f"({text})"
    return text


def _normal(terms: dict[Atom, Number], const: Number) -> Number | Expr:
    kept = tuple((a, c) for a, c in terms.items() if c)
    return Expr(kept, const) if kept else const


def mul(a: Dim, b: Dim) -> Dim:
    """Product, or ``None`` when both sides are symbolic (not linear)."""
    if a is None or b is None:
        return None
    if isinstance(a, Expr) and isinstance(b, Expr):
        return None
    return a * b


def render(value: Any) -> str:
    """Source text of a dimension; ``?`` when it is not expressible."""
    if value is None:
        return "?"
    return value.render() if isinstance(value, Expr) else str(value)


def names(value: object) -> set[str]:
    """The names an Expr (or a tuple or list of them) is written with."""
    if isinstance(value, Expr):
        found: set[str] = set()
        for atom, _ in value.terms:
            found |= {atom} if isinstance(atom, str) else atom.names()
        return found
    if isinstance(value, (tuple, list)):
        return set().union(*(names(v) for v in value)) if value else set()
    return set()


def functions(value: object) -> set[str]:
    """The functions of :data:`FUNCTIONS` an Expr uses (generated source
    defines ``_make_divisible`` when it does)."""
    if isinstance(value, Expr):
        found: set[str] = set()
        for atom, _ in value.terms:
            if isinstance(atom, Apply):
                found |= {atom.op} - set(BINARY)
                found |= functions(atom.args)
        return found
    if isinstance(value, (tuple, list)):
        return set().union(*(functions(v) for v in value)) if value else set()
    return set()


# -- builders: numbers when they can, symbols otherwise ---------------------


class DivisionByZero(ArithmeticError):
    """A spec expression divides by zero."""


def _symbolic(*values: Any) -> bool:
    return any(isinstance(v, Expr) for v in values)


def _wrap(op: str, *args: Any) -> Expr:
    return Expr(((Apply(op, tuple(args)), 1),))


def add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return Expr.of(a) + b if _symbolic(a, b) else a + b


def negate(a: Any) -> Any:
    return None if a is None else a * -1


def times(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, Expr) and isinstance(b, Expr):
        return _wrap("*", a, b)
    return a * b


def divide(op: str, a: Any, b: Any) -> Any:
    """``/``, ``//`` or ``%``; raises :class:`DivisionByZero`."""
    if a is None or b is None:
        return None
    if is_number(b) and b == 0:
        raise DivisionByZero(op)
    if _symbolic(a, b):
        # kept as written, never as a product by 1 / b: int(49 * (49 / 49)) is
        # 49, int(49 * (0.02040816326530612 * 49)) is 48
        return _wrap(op, a, b)
    if op == "/":
        return a / b
    return a // b if op == "//" else a % b


def make_divisible(value: Number, divisor: Number, min_value: Number | None = None) -> int:
    """torchvision's ``_make_divisible``: ``value`` rounded to the nearest
    multiple of ``divisor`` (at least ``min_value``), never more than 10% down."""
    if min_value is None:
        min_value = divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


#: functions a spec expression may call: name -> (arity range, implementation)
FUNCTIONS: dict[str, tuple[tuple[int, int], Any]] = {
    "min": ((2, 8), min),
    "max": ((2, 8), max),
    "int": ((1, 1), int),
    "round": ((1, 1), round),
    "make_divisible": ((2, 3), make_divisible),
}


def apply(fn: str, args: list[Any]) -> Any:
    """A function of :data:`FUNCTIONS` on numbers, or kept symbolic."""
    if any(a is None for a in args):
        return None
    if _symbolic(*args):
        return _wrap(fn, *args)
    return FUNCTIONS[fn][1](*args)


# -- substitution --------------------------------------------------------------


def evaluate(value: Any, env: dict[str, Any], missing: str = "keep") -> Any:
    """``value`` with the names of ``env`` replaced by their values (numbers or
    Exprs) and folded. A name not in ``env`` stays a name (``missing="keep"``)
    or makes the result ``None`` (``missing="none"``)."""
    if isinstance(value, tuple):
        return tuple(evaluate(v, env, missing) for v in value)
    if not isinstance(value, Expr):
        return value
    result: Any = value.const
    for atom, coeff in value.terms:
        if isinstance(atom, str):
            if atom in env:
                part = env[atom]
            elif missing == "keep":
                part = Expr.name(atom)
            else:
                return None
            if part is None or not (is_number(part) or isinstance(part, Expr)):
                return None
        else:
            part = _apply_atom(atom, env, missing)
        result = add(result, times(coeff, part))
        if result is None:
            return None
    return result


def _apply_atom(atom: Apply, env: dict[str, Any], missing: str) -> Any:
    args = [evaluate(a, env, missing) for a in atom.args]
    if atom.op in BINARY:
        if atom.op == "*":
            return times(*args)
        return divide(atom.op, *args)
    return apply(atom.op, args)


def substitute(value: object, known: dict[str, object]) -> object:
    """Replace names in ``value`` (an Expr, or tuples of them) by the numbers
    in ``known``; a value that is exactly one name takes its value as is
    (a string such as an activation, say)."""
    if isinstance(value, tuple):
        return tuple(substitute(v, known) for v in value)
    if not isinstance(value, Expr):
        return value
    atom = value.atom
    if isinstance(atom, str) and atom in known and not is_number(known[atom]):
        return known[atom]  # a non-numeric parameter: its value as is
    numbers = {n: v for n, v in known.items() if is_number(v)}
    return evaluate(value, numbers)


def bind(dim: Dim, names: dict[str, object]) -> Dim:
    """Evaluate a class-level dimension with the names of one use of the class
    (values may themselves be symbolic); ``None`` when a name is missing."""
    return evaluate(dim, names, missing="none")


def has_expr(value: object) -> bool:
    """Written with a ``$name``: an Expr, or a list or tuple holding one."""
    if isinstance(value, Expr):
        return True
    return isinstance(value, (list, tuple)) and any(has_expr(v) for v in value)
