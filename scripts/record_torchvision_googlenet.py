"""Re-record ``tests/fixtures/torchvision_googlenet_state_dict.txt``.

    .venv/bin/python scripts/record_torchvision_googlenet.py

Builds the transcription of torchvision's GoogLeNet in
``tests/reference/torchvision_googlenet.py`` (``aux_logits=True``,
``init_weights=False``, 1000 classes) and writes one line per state_dict entry,
in state_dict order: ``key<TAB>shape``. The output depends only on the module
structure (no weights, no dates), so re-recording an unchanged transcription
gives the same bytes. Prints the parameter counts with and without the
auxiliary heads.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from reference.torchvision_googlenet import GoogLeNet

FIXTURE = ROOT / "tests" / "fixtures" / "torchvision_googlenet_state_dict.txt"
HEADER = [
    "# state_dict of torchvision.models.googlenet(aux_logits=True, init_weights=False),",
    "# 1000 classes, from tests/reference/torchvision_googlenet.py.",
    "# Written by scripts/record_torchvision_googlenet.py; do not edit by hand.",
    "# One line per entry in state_dict order: key<TAB>shape. A shape is the sizes",
    "# joined by 'x' (64x3x7x7); a 0-dimensional tensor (num_batches_tracked) is",
    "# written 'scalar'. Lines starting with '#' are comments.",
]


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def fixture_text(model: GoogLeNet) -> str:
    entries = [f"{key}\t{shape_text(tuple(t.shape))}" for key, t in model.state_dict().items()]
    return "\n".join(HEADER + entries) + "\n"


def parameter_count(model: GoogLeNet) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    with_aux = GoogLeNet(aux_logits=True, init_weights=False)
    without_aux = GoogLeNet(aux_logits=False, init_weights=False)
    FIXTURE.write_text(fixture_text(with_aux), encoding="utf-8")
    print(f"wrote {FIXTURE.relative_to(ROOT)}: {len(with_aux.state_dict())} entries")
    print(f"parameters, aux_logits=True:  {parameter_count(with_aux):,}")
    print(f"parameters, aux_logits=False: {parameter_count(without_aux):,}")


if __name__ == "__main__":
    main()
