"""Property-based fuzzing of the front end (load, validate, infer shapes,
generate source) with mutations of the bundled specs (see ``tests/fuzzing.py``).

The only outcomes allowed are success and an ``ArchcError`` whose every
diagnostic is located. ``scripts/fuzz_report.py`` runs the same cases and
counts the outcomes.
"""

from __future__ import annotations

import pytest
import yaml
from attacks import REFUSED
from fuzzing import Case, cases, compare_scans, run_front_end
from hypothesis import HealthCheck, given, settings

from archcompile.limits import Limits

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=250, **SETTINGS)
@given(cases())
def test_mutated_specs_succeed_or_fail_located(case: Case) -> None:
    run_front_end(case)


@pytest.mark.slow
@settings(max_examples=3000, **SETTINGS)
@given(cases())
def test_mutated_specs_succeed_or_fail_located_at_scale(case: Case) -> None:
    run_front_end(case)


def test_the_mutations_reach_both_outcomes() -> None:
    """The cases are neither all broken nor all harmless (or the test proves little)."""
    outcomes = []

    @settings(max_examples=60, **SETTINGS)
    @given(cases())
    def collect(case: Case) -> None:
        outcomes.append(run_front_end(case))

    collect()
    assert any(o.ok for o in outcomes) and any(not o.ok for o in outcomes)


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML without libyaml")
@settings(max_examples=150, **SETTINGS)
@given(cases())
def test_libyaml_and_python_scans_agree_on_the_limits(case: Case) -> None:
    """archc checks the limits with libyaml when it can (fast), then reads the
    document with the pure-Python parser: both must enforce the same limits."""
    compare_scans(case.text)


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML without libyaml")
@pytest.mark.parametrize("attack", [*REFUSED, "values", "events", "documents"])
def test_libyaml_and_python_scans_agree_on_attacks(attack: str) -> None:
    texts = {
        "values": "[" + ", ".join(["1"] * 1_001) + "]",
        "events": "[" + ", ".join(["*a"] * 2_001) + "]",
        "documents": "a: 1\n---\nb: 2\n",
    }
    small = Limits(max_yaml_events=2_000, max_nodes=1_000)
    compare_scans(texts[attack] if attack in texts else REFUSED[attack][0], small)
