"""Integer expressions over named parameters, for generated source.

The generated ``Inception`` class is written once for every use, so the channel
count after its first 1x1 conv is not ``96`` but ``c2_reduce``, and its output
has ``c1 + c2 + c3 + c4`` channels. Shape rules run unchanged on these values:
``Expr`` supports the arithmetic they need (sums, products with integers) and
anything beyond that yields ``None``, "not expressible", which the code
generator turns into a clear error where it matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Expr:
    """``sum(coeff * name) + const`` with integer coefficients."""

    terms: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    const: int = 0

    @staticmethod
    def name(name: str) -> Expr:
        return Expr(((name, 1),))

    @staticmethod
    def of(value: int | Expr) -> Expr:
        return value if isinstance(value, Expr) else Expr((), value)

    def _combine(self, other: int | Expr, sign: int) -> Dim:
        other = Expr.of(other)
        terms = dict(self.terms)
        for name, coeff in other.terms:
            terms[name] = terms.get(name, 0) + sign * coeff
        return _normal(terms, self.const + sign * other.const)

    def __add__(self, other: object) -> Dim:
        if isinstance(other, (int, Expr)) and not isinstance(other, bool):
            return self._combine(other, 1)
        return NotImplemented

    __radd__ = __add__

    def __mul__(self, other: object) -> Dim:
        if isinstance(other, int) and not isinstance(other, bool):
            return _normal({n: c * other for n, c in self.terms}, self.const * other)
        return NotImplemented

    __rmul__ = __mul__

    def render(self) -> str:
        """Python source for the expression, terms in first-use order."""
        parts = []
        for name, coeff in self.terms:
            parts.append(name if coeff == 1 else f"{coeff} * {name}")
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts).replace("+ -", "- ")

    def __str__(self) -> str:
        return self.render()


#: a dimension: known, symbolic, or ``None`` when it cannot be expressed
Dim = int | Expr | None


def _normal(terms: dict[str, int], const: int) -> int | Expr:
    kept = tuple((n, c) for n, c in terms.items() if c)
    return Expr(kept, const) if kept else const


def mul(a: Dim, b: Dim) -> Dim:
    """Product, or ``None`` when both sides are symbolic (not linear)."""
    if a is None or b is None:
        return None
    if isinstance(a, Expr) and isinstance(b, Expr):
        return None
    return a * b


def render(value: Dim) -> str:
    """Source text of a dimension; ``?`` when it is not expressible."""
    if value is None:
        return "?"
    return value.render() if isinstance(value, Expr) else str(value)


def substitute(value: object, known: dict[str, object]) -> object:
    """Replace names in ``value`` (an Expr, or tuples of them) by ``known`` ints."""
    if isinstance(value, tuple):
        return tuple(substitute(v, known) for v in value)
    if not isinstance(value, Expr):
        return value
    if len(value.terms) == 1 and value.const == 0 and value.terms[0][1] == 1:
        name = value.terms[0][0]
        if name in known and not isinstance(known[name], int):
            return known[name]  # a non-integer parameter: its value as is
    result: int | Expr = value.const
    for name, coeff in value.terms:
        if name in known and isinstance(known[name], int):
            result = result + coeff * known[name]  # type: ignore[operator]
        else:
            result = result + Expr(((name, coeff),))
    return result


def bind(dim: Dim, names: dict[str, object]) -> Dim:
    """Evaluate a class-level dimension with the names of one use of the class
    (values may themselves be symbolic); ``None`` when a name is missing or the
    result would not be linear."""
    if not isinstance(dim, Expr):
        return dim
    result: Dim = dim.const
    for name, coeff in dim.terms:
        value = names.get(name)
        if value is None or not isinstance(value, (int, Expr)) or isinstance(value, bool):
            return None
        result = result + coeff * value  # type: ignore[operator]
    return result


def has_expr(value: object) -> bool:
    """Written with a ``$name``: an Expr, or a list or tuple holding one."""
    if isinstance(value, Expr):
        return True
    return isinstance(value, (list, tuple)) and any(has_expr(v) for v in value)
