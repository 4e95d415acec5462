"""The catalogue of bad specs in ``tests/bad_specs/``.

Each file states what ``archc shapes`` must print for it in comment lines at
its top: ``# expect: LINE:COL: error: ...`` (the first diagnostic, without the
file name), optionally ``# hint: ...`` (the hint of that diagnostic) and
``# also: LINE:COL: error: ...`` (further diagnostics that must be reported
in the same run). Every bad spec exits with code 1 and never shows a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

BAD_SPECS = sorted((ROOT / "tests" / "bad_specs").glob("*.yaml"))


def _expectations(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"expect": [], "hint": [], "also": []}
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        if key in found:
            found[key].append(value)
    return found


@pytest.mark.parametrize("path", BAD_SPECS, ids=lambda p: p.stem)
def test_bad_spec_is_reported_located(path: Path, cli) -> None:
    expected = _expectations(path)
    assert expected["expect"], f"{path.name} has no '# expect:' line"
    shown = path.relative_to(ROOT).as_posix()
    result = cli("shapes", shown)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err + result.out
    lines = result.err.splitlines()
    assert lines[0] == f"{shown}:{expected['expect'][0]}"
    hints = [line.strip().removeprefix("hint: ") for line in lines if line.startswith("  hint: ")]
    for hint in expected["hint"]:
        assert hint in hints
    for also in expected["also"]:
        assert f"{shown}:{also}" in lines


def test_catalogue_covers_the_first_issue() -> None:
    names = {p.stem for p in BAD_SPECS}
    assert {
        "syntax_error",
        "unknown_layer",
        "inception_arity",
        "inception_nesting",
        "duplicate_key",
        "collapsing_shape",
        "undefined_name",
    } <= names


def test_catalogue_covers_untrusted_input() -> None:
    """Issue 4: every input that fits in one spec file has an entry (the others
    are in ``tests/test_reliability.py``)."""
    names = {p.stem for p in BAD_SPECS}
    assert {
        # not YAML, or not a spec
        "yaml_list",
        "yaml_scalar",
        "only_comments",
        "tab_indentation",
        "control_character",
        "python_tag",
        "bad_explicit_tag",
        "recursive_alias",
        "merge_key",
        # wrong values
        "zero_channels",
        "negative_channels",
        "zero_stride",
        "zero_kernel",
        "negative_kernel",
        "pool_padding_too_large",
        "same_padding_with_stride",
        "groups_not_dividing_output",
        "groups_not_dividing_input",
        "kernel_larger_than_input",
        "float_channels",
        "string_channels",
        "boolean_channels",
        "nan",
        "infinity",
        "integer_too_large",
        # wrong structure
        "unknown_key",
        "unknown_argument",
        "unknown_layer_bare",
        "define_not_a_mapping",
        "define_parameter_missing",
        "define_parameter_unknown",
        "define_parameter_twice",
        "add_shapes_differ",
        "concat_sizes_differ",
        "repeat_too_many",
        "define_uses_itself",
        "define_cycle",
        # names that would break generated code
        "block_named_forward",
        "block_named_class",
        "block_named_private",
        "branch_named_x",
        "param_named_nn",
        "param_named_like_a_class",
        "spec_name_clash",
        "spec_named_like_a_helper",
    } <= names
