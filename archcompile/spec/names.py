"""Rules for the names a spec gives to blocks, branches and parameters.

Names become Python identifiers in generated source (class attributes, local
variables, ``__init__`` arguments), so they must be identifiers, must not be
keywords, and must not shadow what the generated module relies on.
"""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Iterable

from archcompile import modules as own_modules

#: attributes of ``torch.nn.Module`` (checked against torch by
#: ``tests/test_names.py``); a block called ``forward`` or ``to`` would replace them
MODULE_ATTRIBUTES = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile
    cpu cuda double dump_patches eval extra_repr float forward get_buffer
    get_extra_state get_parameter get_submodule half ipu load_state_dict modules mtia
    named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook
    register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
    set_extra_state set_submodule share_memory smart_apply state_dict to to_empty train
    training type xpu zero_grad""".split()
)

#: names the generated module uses itself (imports, builtins in type hints, locals)
GENERATED_NAMES = frozenset(
    {
        "self",
        "x",
        "torch",
        "nn",
        "F",
        "Tensor",
        "super",
        "int",
        "float",
        "bool",
        "str",
        "tuple",
        "x_in",
        "input",
        "None",
        "OrderedDict",
        "NamedTuple",
    }
)


#: classes the generated module defines for ``add``, ``mul`` and ``concat``
#: branches, and archc's own module classes (:mod:`archcompile.modules`) it may copy in
HELPER_CLASSES = frozenset({"Add", "Concat", "Mul"}) | frozenset(own_modules.registry())


#: names a generated composite class gives its input: its first __init__
#: argument, the height, width or length in its shape comments, and the
#: ``$in_...`` names of a block's input in spec expressions
CLASS_INPUT_NAMES = frozenset(
    {"in_channels", "in_features", "H", "W", "L", "in_height", "in_width"}
)


def identifier_problem(name: str, what: str) -> str | None:
    """Why ``name`` cannot name a ``what``, or None when it can."""
    if not isinstance(name, str):
        return f"{what} name must be a string, got {name!r}"
    if not name.isidentifier() or not name.isascii():
        return f"{what} name {name!r} is not a Python identifier (letters, digits, '_')"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{what} name {name!r} is a Python keyword"
    if name.startswith("__"):
        return f"{what} name {name!r} starts with '__', which Python reserves"
    return None


def attribute_problem(name: str, what: str) -> str | None:
    """Like :func:`identifier_problem`, for names that become module attributes."""
    problem = identifier_problem(name, what)
    if problem:
        return problem
    if name.startswith("_"):
        return f"{what} name {name!r} starts with '_', which torch modules keep for their internals"
    if name in MODULE_ATTRIBUTES:
        return f"{what} name {name!r} would shadow the torch.nn.Module attribute of that name"
    if name in GENERATED_NAMES:
        return f"{what} name {name!r} is used by the generated code itself"
    return None


def variable_problem(name: str, what: str) -> str | None:
    """Like :func:`identifier_problem`, for names that become arguments or locals."""
    problem = identifier_problem(name, what)
    if problem:
        return problem
    if name in GENERATED_NAMES or name in CLASS_INPUT_NAMES:
        return f"{what} name {name!r} is used by the generated code itself"
    return None


def definition_problem(name: str) -> str | None:
    """Why ``name`` cannot name a ``define:`` entry, or None when it can."""
    from archcompile.layers import COMBINATORS, LAYER_KINDS

    # a use of the block inside another one is an attribute named after it
    problem = attribute_problem(name, "block definition")
    if problem:
        return problem
    if name == "name":
        return "block definition name 'name' is a key of every layer item; choose another name"
    if name in LAYER_KINDS or name in COMBINATORS:
        return (
            f"block definition name {name!r} is a layer kind of the language; choose another name"
        )
    return None


def class_name(definition: str) -> str:
    """``basic_block`` -> ``BasicBlock``; the class generated for a definition."""
    return "".join(part[:1].upper() + part[1:] for part in definition.split("_") if part)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` is most likely a misspelling of, if any."""
    matches = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    match = closest(word, choices)
    return f"did you mean {match!r}?" if match else None
