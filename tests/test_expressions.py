"""Spec expressions (archcompile/spec/expressions.py) and the symbolic values
they build (archcompile/symbolic.py): numbers, generated-source text, errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archcompile import symbolic as S
from archcompile.spec.expressions import DEFERRED, ExprError, evaluate, parse


def value(text: str, **names):
    return evaluate(parse(text), lambda ref: names[ref.name])


def symbol(text: str) -> str:
    tree = parse(text)
    result = evaluate(tree, lambda ref: S.Expr.name(ref.name))
    return S.render(result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("7 / 2", 3.5),
        ("2 - 3 - 4", -5),
        ("-$c + 10", 2),
        ("$c * 4", 32),
        ("max($c // 16, 3)", 3),
        ("min($c, 4, 6)", 4),
        ("int($c * 0.75)", 6),
        ("round(2.5)", 2),
        ("make_divisible($c * 2.5, 8)", 24),
        ("make_divisible(32 * 0.5, 8)", 16),
        ("make_divisible(18, 8)", 24),  # never more than 10% down
        ("make_divisible(3, 8, 1)", 9),  # 1, then up by 8: torchvision does the same
        ("$c == 8 and not $c > 9", True),
        ("$c != 8 or 1 < 2", True),
        ("true and false", False),
    ],
)
def test_values(text: str, expected) -> None:
    result = value(text, c=8)
    assert result == expected and type(result) is type(expected)


def test_make_divisible_is_torchvisions_rule() -> None:
    # torchvision's MobileNet v2 at width 0.75 and 1.4: 32 -> 24 and 48, 24 -> 16? (18 -> 24)
    assert [S.make_divisible(c * 0.75, 8) for c in (32, 16, 24, 96, 320, 1280)] == [
        24,
        16,
        24,
        72,
        240,
        960,
    ]
    assert [S.make_divisible(c * 1.4, 8) for c in (32, 16, 24, 96, 320)] == [48, 24, 32, 136, 448]


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("$c * 4", "4 * c"),
        ("$c + $d - 1", "c + d - 1"),
        ("$c // 16", "c // 16"),
        ("max($c // 16, 8)", "max(c // 16, 8)"),
        ("4 * ($c // 2)", "4 * (c // 2)"),
        ("($c + $d) // 2", "(c + d) // 2"),
        ("$c // ($d * 2)", "c // (2 * d)"),
        ("$c * $d", "c * d"),
        ("$c * ($d // 2)", "c * (d // 2)"),
        ("$c // 2 * $d", "c // 2 * d"),
        ("$c % ($d % 3)", "c % (d % 3)"),
        ("$c - ($d - 1)", "c - d + 1"),
        ("make_divisible($c * 0.5, 8)", "_make_divisible(0.5 * c, 8)"),
        ("$c % 2 + 1", "c % 2 + 1"),
    ],
)
def test_symbols_print_as_python(text: str, source: str) -> None:
    assert symbol(text) == source


# -- the symbolic path agrees with the numeric one -----------------------------

_leaves = st.one_of(st.integers(-5, 40), st.sampled_from(["$a", "$b", "$c"] * 3))


def _expressions():
    def extend(inner):
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        calls = st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        )
        return st.one_of(binary, calls, inner.map(lambda e: f"-{e}"))

    return st.recursive(_leaves.map(str), extend, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(_expressions(), st.integers(1, 30), st.integers(1, 30), st.integers(1, 30))
def test_symbolic_source_computes_what_the_numbers_do(text: str, a: int, b: int, c: int) -> None:
    names = {"a": a, "b": b, "c": c}
    try:
        expected = value(text, **names)
    except ExprError:
        return  # a division by zero: refused, which the next test checks
    tree = parse(text)
    sym = evaluate(tree, lambda ref: S.Expr.name(ref.name))
    # bound again with the numbers: the generated class at one use
    assert S.bind(sym, names) == expected
    # and printed as Python: what generated source computes (a test may eval)
    assert eval(S.render(sym), {"__builtins__": {"min": min, "max": max}}, names) == expected


def test_division_by_zero_is_located() -> None:
    with pytest.raises(ExprError, match="division by zero") as caught:
        value("$c * 4 // ($c - 8)", c=8)
    assert caught.value.offset == 7


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("__import__('os')", "unknown name '__import__'", 0),
        ("$c.__class__", "unexpected '.'", 2),
        ("$c ** 2", "expected a value but found '*'", 4),
        ("lambda: 1", "unknown name 'lambda'", 0),
        ("$c if $c else 1", "unexpected 'if'", 3),
        ("max($c)", "max takes 2 to 8 arguments, got 1", 0),
        ("$c +", "expected a value but found the end", 4),
        ("($c", "expected ')' but found the end", 3),
        ("1 < $c < 3", "comparisons do not chain", 7),
        ("$c + (1 > 0)", "'+' needs a number, not a condition", 6),
        ("not $c", "a condition must be true or false, got 8", 4),
        ("$", "unexpected '$'", 0),
        ("x" * 600, "limited to 500 characters", 500),
    ],
)
def test_errors_name_the_column(text: str, message: str, offset: int) -> None:
    with pytest.raises(ExprError, match=re.escape(message)) as e:
        value(text, c=8)
    assert e.value.offset == offset


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="$abc_()+-*/%<>=!., 0123456789'\"[]{}#\\:", max_size=40))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        value(text, a=1, b=2, c=3)
    except ExprError as problem:
        assert 0 <= problem.offset <= len(text)
    except KeyError:
        pass  # an unknown $name: the expander's lookup reports it


def test_deferred_propagates_until_shapes_are_known() -> None:
    lookup = {"c": 8, "in_channels": DEFERRED}
    tree = parse("max($in_channels // 4, $c)")
    assert evaluate(tree, lambda ref: lookup[ref.name]) is DEFERRED
    assert evaluate(parse("$c > 100 and $in_channels == 3"), lambda r: lookup[r.name]) is False
