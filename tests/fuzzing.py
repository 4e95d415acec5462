"""Mutations of the bundled specs, shared by ``tests/test_fuzz.py`` and
``scripts/fuzz_report.py``.

A case starts from one of the bundled specs (``specs/*.yaml``,
``tests/specs/*.yaml``) and applies one to four mutations, either to the parsed
YAML (delete a key, duplicate or rename it, retype or perturb a value, swap
layers, change a layer kind, nest or graft values) or to the raw text (cut it,
insert or delete characters, replace, duplicate, swap or re-indent lines).
:func:`run_front_end` then loads, checks and compiles the result in memory and
says what happened; anything but success or a located
:class:`~archcompile.errors.ArchcError` raises :class:`Crash`.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

import archcompile
from archcompile.errors import ArchcError, LimitError
from archcompile.layers import COMBINATORS, LAYER_KINDS
from archcompile.limits import DEFAULT_LIMITS, Limits

ROOT = Path(__file__).resolve().parent.parent
SEED_PATHS = sorted((ROOT / "specs").glob("**/*.yaml")) + sorted(
    (ROOT / "tests/specs").glob("*.yaml")
)


@dataclass(frozen=True)
class Seed:
    name: str  # as shown in reports: specs/googlenet.yaml
    text: str
    base_dir: Path  # where its ``extends`` are found


SEEDS = [Seed(p.relative_to(ROOT).as_posix(), p.read_text("utf-8"), p.parent) for p in SEED_PATHS]
SEED_LINES = sorted({line for seed in SEEDS for line in seed.text.splitlines() if line.strip()})

KINDS = sorted([*LAYER_KINDS, *COMBINATORS, "inception"])
ARGUMENTS = sorted(
    {name for model in LAYER_KINDS.values() for name in model.model_fields if name != "kind"}
)
TOP_KEYS = [
    "archc", "name", "description", "extends", "input", "params", "defaults", "define", "outputs",
]  # fmt: skip
#: names that must be refused somewhere: keywords, torch.nn.Module attributes,
#: names the generated code uses, private and dunder names
HOSTILE_NAMES = [
    "forward", "class", "_x", "__init__", "x", "nn", "self", "torch", "training", "to",
    "state_dict", "in_channels", "in_features", "H", "W", "match", "Tensor", "Inception",
    "9lives", "has space", "é", "", "Add", "Concat", "Mul", "ChannelSplit", "BasicBlock",
    "VggBlock", "ConvBn", "Attention", "StochasticDepth", "LayerNorm2d", "F", "L",
    "TransformerBlock",
]  # fmt: skip
HOSTILE_TEXT = [
    '"""', "'''", "\\", "\n", "\r", "\u2028", "#", 'import os; os.system("x")', "{{ x }}", "\t",
]  # fmt: skip
#: keys of items and outputs: names, from:, joins
GRAPH_WORDS = [
    "name", "from", "input", "training_only", "loss_weight", "x_in", "enc1", "conv2", "if",
]  # fmt: skip
WORDS = (
    KINDS
    + ARGUMENTS
    + TOP_KEYS
    + HOSTILE_NAMES
    + GRAPH_WORDS
    + ["blocks", "layers", "times", "doc"]
)
#: values of the enumerated arguments: modes, norms, activations, and near misses
CHOICES = [
    "nearest", "bilinear", "bicubic", "row", "batch", "group", "layer", "none", "tanh",
    "relu6", "hardswish", "hardsigmoid", "swish", "reshape", "Conv2d", "hard_swish",
]  # fmt: skip
#: mapping arguments (norm:) and their near misses
MAPPINGS = [
    {"batch": {"eps": 0.001, "momentum": 0.01}}, {"batch": None}, {"batch": {"eps": "$eps"}},
    {"group": {"groups": 4}}, {"group": {"groups": 3, "eps": 1e-6}}, {"group": {}},
    {"batch": {"groups": 2}}, {"layer": {}}, {"batch": 0.1}, {"batch": {}, "group": {}},
    {"batch": {"eps": "$eps * 2"}}, {"group": {"groups": "$in_channels // 4"}},
]  # fmt: skip
#: expressions and conditions, good and bad (spec/expressions.py)
EXPRESSIONS = [
    "$c * 4", "$width // 2 + 1", "$c // 0", "$c % 0", "$in_channels // 2", "$in_channels * 0.5",
    "max($c, 8)", "min($c)", "make_divisible($width * 0.5, 8)", "int($num_classes / 3)",
    "$stride == 1 and $in_channels == $out", "$stride", "not $c", "1 < 2 < 3", "(($c",
    "__import__('os')", "$c.__class__", "$in_height * $in_width", "$x ** 2", "true or $nope",
]  # fmt: skip
STRINGS = (
    WORDS
    + ["$num_classes", "$width", "$c", "$nope", "$", "same", "valid", "batch", "relu", "yes"]
    + ["tanh", "none", "row", "transformer_block", "mixer_block", "convnext_block"]
    + CHOICES
    + EXPRESSIONS
    + HOSTILE_TEXT
)
NUMBERS = [0, 1, 2, 3, -1, -7, 2**31 - 1, 2**31, 2**63, 10**9, 10**30, 0.5, -0.25, 1e308, 1e-300]
#: characters inserted into the text: YAML syntax, controls, unicode line breaks
ALPHABET = (
    ":-[]{},&*!|>'\"%@`#?$\\ \t\n\r abcz019._"
    "\x00\x01\x0b\x0c\x1b\x7f\x85\xa0\u2028\u2029\ufeff\ufffe\U0001f600é"
)


@dataclass
class Case:
    seed: Seed
    text: str
    steps: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.seed.name} + " + "; ".join(self.steps)


# -- mutations of the parsed document -------------------------------------------------


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path below ``value`` (not the root itself)."""
    found = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        found.append((*path, key))
        found += _paths(child, (*path, key))
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _typo(word: str, draw) -> str:
    if not word:
        return "x"
    i = draw(st.integers(0, len(word) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "case"]))
    if how == "drop":
        return word[:i] + word[i + 1 :]
    if how == "double":
        return word[:i] + word[i] + word[i:]
    if how == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i].swapcase() + word[i + 1 :]


def _new_value(draw, old: Any, doc: Any) -> tuple[str, Any]:
    """A replacement for ``old``: retyped, perturbed, nested or grafted."""
    how = draw(
        st.sampled_from(
            ["retype", "number", "string", "nest_list", "nest_map", "graft", "empty", "null"]
        )
    )
    if how == "retype":
        if isinstance(old, (dict, list)):
            return how, draw(st.sampled_from([str(old)[:40], 3, 1.5, True, None]))
        choices = [str(old), [old], {"k": old}, None, True, False]
        if isinstance(old, (int, float)) and not isinstance(old, bool):
            choices += [float(old), int(old) if abs(old) < 1e18 else 0, -old]
        return how, draw(st.sampled_from(choices))
    if how == "number":
        if isinstance(old, (int, float)) and not isinstance(old, bool):
            return how, draw(st.sampled_from([*NUMBERS, old + 1, old - 1, old * 2, old + 0.5]))
        return how, draw(st.sampled_from(NUMBERS))
    if how == "string":
        if isinstance(old, str) and old:
            return "typo", _typo(old, draw)
        return how, draw(st.sampled_from(STRINGS))
    if how == "nest_list":
        return how, [copy.deepcopy(old)]
    if how == "nest_map":
        if draw(st.booleans()):  # a mapping argument such as norm: {batch: {eps: ...}}
            return "mapping", copy.deepcopy(draw(st.sampled_from(MAPPINGS)))
        return how, {draw(st.sampled_from(WORDS)): copy.deepcopy(old)}
    if how == "graft":
        paths = _paths(doc)
        return how, copy.deepcopy(_get(doc, draw(st.sampled_from(paths)))) if paths else old
    if how == "empty":
        return how, draw(st.sampled_from([[], {}, ""]))
    return how, None


def mutate_document(draw, doc: Any, steps: list[str]) -> Any:
    """One mutation of the parsed document, in place where possible."""
    paths = _paths(doc)
    if not paths:
        return draw(st.sampled_from([{}, [], {"archc": 1}, "text"]))
    numbers = [p for p in paths if _is_number(_get(doc, p)) and p != ("archc",)]
    if numbers and draw(st.integers(0, 2)) == 0:
        # a third of the changes perturb a number: the spec often stays valid,
        # so shape inference and the code generator see new sizes
        path = draw(st.sampled_from(numbers))
        parent, key = _get(doc, path[:-1]), path[-1]
        parent[key] = draw(st.one_of(st.integers(1, 9), st.sampled_from(NUMBERS)))
        steps.append(f"number {'.'.join(map(str, path))} = {parent[key]!r}")
        return doc
    path = draw(st.sampled_from(paths))
    parent, key = _get(doc, path[:-1]), path[-1]
    value = parent[key]
    operations = ["delete", "duplicate", "replace", "replace", "replace"]
    if isinstance(parent, dict):
        operations += ["rename", "rename"]
    if isinstance(parent, list) and len(parent) > 1:
        operations += ["swap", "swap"]
    if isinstance(value, str) or (isinstance(value, dict) and len(value) == 1):
        operations += ["kind", "kind"]
    operation = draw(st.sampled_from(operations))
    where = ".".join(map(str, path))
    if operation == "delete":
        del parent[key]
        steps.append(f"delete {where}")
    elif operation == "duplicate":
        if isinstance(parent, dict):
            name = draw(st.sampled_from([_typo(str(key), draw), *WORDS, 1, True]))
            parent[name] = copy.deepcopy(value)
            steps.append(f"duplicate {where} as {name!r}")
        else:
            parent.insert(draw(st.integers(0, len(parent))), copy.deepcopy(value))
            steps.append(f"duplicate {where}")
    elif operation == "replace":
        how, new = _new_value(draw, value, doc)
        parent[key] = new
        steps.append(f"{how} {where} = {new!r:.60}")
    elif operation == "rename":
        name = draw(st.sampled_from([_typo(str(key), draw), *WORDS]))
        items = list(parent.items())
        parent.clear()
        for k, v in items:
            parent[name if k == key else k] = v
        steps.append(f"rename {where} to {name!r}")
    elif operation == "swap":
        other = draw(st.integers(0, len(parent) - 1))
        parent[key], parent[other] = parent[other], parent[key]
        steps.append(f"swap {where} with [{other}]")
    else:  # change a layer kind: '- relu' or '- conv: {...}'
        kind = draw(
            st.sampled_from(
                [*KINDS, _typo(str(value if isinstance(value, str) else next(iter(value))), draw)]
            )
        )
        parent[key] = kind if isinstance(value, str) else {kind: next(iter(value.values()))}
        steps.append(f"kind {where} = {kind!r}")
    return doc


# -- mutations of the text -----------------------------------------------------------------


def mutate_text(draw, text: str, steps: list[str]) -> str:
    operation = draw(
        st.sampled_from(
            ["cut", "insert", "delete", "line", "duplicate_line", "swap_lines", "indent"]
        )
    )
    comments = re.match(r"(#[^\n]*\n)*", text)  # a cut there would leave no spec at all
    at = draw(st.integers(comments.end() if comments else 0, len(text)))
    lines = text.split("\n")
    row = draw(st.integers(0, max(len(lines) - 1, 0)))
    if operation == "cut":
        steps.append(f"cut at {at}")
        return text[:at]
    if operation == "insert":
        inserted = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=8))
        steps.append(f"insert {inserted!r} at {at}")
        return text[:at] + inserted + text[at:]
    if operation == "delete":
        length = draw(st.integers(1, 20))
        steps.append(f"delete {text[at : at + length]!r} at {at}")
        return text[:at] + text[at + length :]
    if operation == "line":
        new = draw(st.one_of(st.sampled_from(SEED_LINES), st.text(alphabet=ALPHABET, max_size=30)))
        steps.append(f"line {row + 1} = {new!r}")
        lines[row] = new
    elif operation == "duplicate_line":
        steps.append(f"duplicate line {row + 1}")
        lines.insert(row, lines[row])
    elif operation == "swap_lines":
        other = draw(st.integers(0, len(lines) - 1))
        steps.append(f"swap lines {row + 1} and {other + 1}")
        lines[row], lines[other] = lines[other], lines[row]
    else:
        indent = draw(st.sampled_from(["", " ", "  ", "    ", "\t", "      "]))
        steps.append(f"indent line {row + 1} with {indent!r}")
        lines[row] = indent + lines[row].lstrip(" ")
    return "\n".join(lines)


@st.composite
def cases(draw) -> Case:
    """A bundled spec with one to four mutations of its document or its text."""
    seed = draw(st.sampled_from(SEEDS))
    case = Case(seed, seed.text)
    # two cases in three change the document (most text changes break the YAML)
    document_steps = draw(st.sampled_from([0, 1, 1, 2, 2, 3]))
    if document_steps:
        doc = yaml.safe_load(seed.text)
        for _ in range(document_steps):
            doc = mutate_document(draw, doc, case.steps)
        case.text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    text_steps = draw(st.sampled_from([0, 0, 0, 1]) if document_steps else st.integers(1, 3))
    for _ in range(text_steps):
        case.text = mutate_text(draw, case.text, case.steps)
    return case


# -- running the front end -----------------------------------------------------------------


class Crash(Exception):
    """The front end did something other than succeed or report a located error."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    kind: str = ""  # for errors: exception class and normalized first message


def error_kind(exc: ArchcError) -> str:
    """``SpecError: unknown layer kind '…'``: the class and the first message with
    quoted text and numbers blanked out, so that similar errors group together."""
    message = exc.first.message.split(", got ")[0]
    message = re.sub(r"U\+[0-9A-F]+", "U+…", message)
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    message = re.sub(r"\$\w+", "$…", message)
    message = re.sub(r"\[[^\[\]]*\]|\[.*\]", "[…]", message)
    message = re.sub(r"-?\d[\d,._e+-]*", "N", message)
    return f"{type(exc).__name__}: {message[:70]}"


def check_located(exc: ArchcError) -> None:
    for diagnostic in exc.diagnostics:
        located = diagnostic.file and diagnostic.line is not None
        if not (located and (diagnostic.column is not None or isinstance(exc, LimitError))):
            raise Crash(f"unlocated diagnostic: {diagnostic.format()}")


def check_generated(source: str) -> None:
    """Generated source is Python whose top level is a docstring, imports and
    classes (and the ``_make_divisible`` function where expressions use it)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise Crash(f"generated source does not parse: {exc}") from None
    for index, node in enumerate(tree.body):
        docstring = index == 0 and isinstance(node, ast.Expr)
        helper = isinstance(node, ast.FunctionDef) and node.name == "_make_divisible"
        if not (
            docstring or helper or isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef))
        ):
            raise Crash(f"unexpected top-level statement: {ast.dump(node)[:80]}")
    # no argument or local variable may hide a class or an import of the module
    module_names = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    module_names |= {
        (alias.asname or alias.name).split(".")[0]
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for alias in n.names
    }
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        local = {a.arg for a in function.args.args + function.args.kwonlyargs}
        local |= {
            n.id
            for n in ast.walk(function)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        if local & module_names:
            raise Crash(f"{function.name} hides {sorted(local & module_names)} of the module")


def run_front_end(case: Case) -> Outcome:
    """Load, infer shapes and generate source in memory, as ``archc build`` does."""
    try:
        spec = archcompile.load_spec_text(case.text, "fuzz.yaml", base_dir=case.seed.base_dir)
        archcompile.infer_shapes(spec)
        source = archcompile.generate_source(spec)
    except ArchcError as exc:
        check_located(exc)
        return Outcome(False, error_kind(exc))
    except Exception as exc:
        raise Crash(f"{type(exc).__name__}: {exc}") from exc
    check_generated(source)
    return Outcome(True)


def compare_scans(text: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """archc checks its limits with libyaml's parser when it can, then reads
    the document with the pure-Python one: the two must agree on every limit
    (a spec refused by one is refused by the other, with the same message)."""
    from archcompile.spec.source import _prescan

    results = []
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        try:
            _prescan(text, "fuzz.yaml", limits, loader)
            results.append("within the limits")
        except ArchcError as exc:
            results.append(exc.format())
        except (yaml.YAMLError, UnicodeError):
            results.append("not YAML")
    libyaml, python = results
    if libyaml != "not YAML" and python != "not YAML" and libyaml != python:
        raise Crash(f"the scans disagree: libyaml: {libyaml}; python: {python}")
