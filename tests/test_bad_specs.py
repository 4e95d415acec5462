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
