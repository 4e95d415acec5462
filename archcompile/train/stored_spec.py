"""Which spec ``archc eval`` uses: the file's, or the resolved one a run stored.

A run trained with ``--set`` stores the resolved spec (overrides applied) and
its hash in checkpoint.json. Evaluating it with the file alone would fail on
shapes, so eval falls back to the stored spec when it reproduces the stored
hash, and says so; ``--spec-from-file`` keeps the file's and gets a hint.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from archcompile.errors import ArchcError, clip
from archcompile.spec.loader import Spec, load_spec_data
from archcompile.train import checkpoint


def stored_sets(trained: dict[str, Any], spec: Spec) -> list[str]:
    """The ``--set k=v`` arguments that turn ``spec``'s params into the stored
    ones: what the user would have to repeat."""
    document = trained.get("document")
    stored = document.get("params") if isinstance(document, dict) else None
    ours = spec.document.get("params") or {}
    if not isinstance(stored, dict) or not isinstance(ours, dict):
        return []
    return [
        f"--set {shlex.quote(f'{key}={value}')}"
        for key, value in stored.items()
        if ours.get(key) != value
    ]


def _stored_spec(trained: dict[str, Any], display: str) -> Spec | None:
    """The stored spec, if it loads and still hashes as stored (same archc
    library blocks); ``None`` otherwise, so the file's is used."""
    document = trained.get("document")
    if not isinstance(document, dict):
        return None
    try:
        spec = load_spec_data(document, display)
    except ArchcError:
        return None
    return spec if spec.sha256 == trained.get("sha256") else None


def choose(spec: Spec, path: Path, from_file: bool) -> tuple[Spec, str | None]:
    """The spec to evaluate ``path`` with, and a one-line note when it is the
    stored one rather than the file's."""
    try:
        saved = checkpoint.load(path, with_state=False)
    except ArchcError:  # evaluating it reports the same error, in its place
        return spec, None
    trained = saved.meta.get("spec", {})
    if from_file or trained.get("sha256") == spec.sha256:
        return spec, None
    stored = _stored_spec(trained, spec.display)
    if stored is None:
        return spec, None
    where = saved.directory / checkpoint.JSON_FILE
    sets = stored_sets(trained, spec)
    why = f"the run was trained with {clip(' '.join(sets))}" if sets else "the spec has changed"
    return stored, f"using the spec stored in {where} ({why})"


def with_hint(exc: ArchcError, spec: Spec, path: Path) -> ArchcError:
    """``exc`` (weights that do not fit the file's spec) with a hint naming
    the ``--set`` values the run was trained with, when there are any."""
    try:
        trained = checkpoint.load(path, with_state=False).meta.get("spec", {})
    except ArchcError:
        return exc
    sets = stored_sets(trained, spec)
    if not sets or not exc.diagnostics:
        return exc
    hint = (
        f"the run was trained with {clip(' '.join(sets))}: repeat it, or leave out --spec-from-file"
    )
    first = replace(exc.diagnostics[0], hint=hint)
    return type(exc)([first, *exc.diagnostics[1:]])
