"""``make bench`` cannot rot: its table code and every section run here, once,
on small specs (the real figures come from ``make bench``; nothing here
asserts anything about time)."""

from __future__ import annotations

import pytest

import archcompile
from bench import run, sections
from bench.timing import interleave, rows_against, table
from tests.conftest import ROOT


def test_interleave_runs_round_robin_and_rows_compare_rounds() -> None:
    order: list[str] = []
    times = interleave({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 2)
    assert order == ["a", "b"] * 3  # one warm-up round, then two timed ones
    rows = rows_against("s", times, "a", per=4, unit="img/s")
    assert [r.variant for r in rows] == ["b"] and rows[0].rounds == 2
    assert rows[0].low <= rows[0].ratio <= rows[0].high
    text = table(rows)
    assert text.splitlines()[2].startswith("| s | b | a |")


def test_wide_spec_has_distinct_layers_that_compile() -> None:
    text = sections.wide_spec(250)
    spec = archcompile.spec.load_spec_text(text, limits=sections.BIG)
    assert spec.tree().total_params > 0
    layers = [line for line in text.splitlines() if "conv:" in line]
    assert len(layers) == 250 and len(set(layers[:57])) == 57  # no repeat: widths vary
    assert "repeat" not in text


@pytest.fixture
def small_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model sections on small specs (the hand-written reference: tiny_cnn built)."""
    tiny, with_bn = ROOT / "tests/specs/tiny_cnn.yaml", ROOT / "tests/specs/resnet_basic.yaml"
    monkeypatch.setattr(sections, "GOOGLENET", tiny)
    monkeypatch.setattr(sections, "GOOGLENET_BN", with_bn)
    monkeypatch.setattr(sections.googlenet_ref, "GoogLeNet", lambda: archcompile.build(tiny))


def test_every_model_section_prints_its_rows(small_specs, capsys) -> None:
    argv = ["--rounds", "1", "--batch", "2", "--sizes", "10,20", "--compile-rounds", "1"]
    text = run.main([*argv, "--only", "compile,googlenet,passes,precision,onnx"])
    assert text == capsys.readouterr().out.strip()
    for row in ("20 layers", "archc generated", "fold_bn", "bfloat16 channels_last"):
        assert f"| {row} |" in text
    assert "onnxruntime (exported --optimize)" in text


def test_quick_mode_is_smaller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_QUICK", "1")
    quick = run.parse([])
    monkeypatch.delenv("BENCH_QUICK")
    full = run.parse([])
    assert quick.rounds < full.rounds and quick.batch < full.batch == 64
    assert full.sizes == (10, 100, 1_000, 10_000)


@pytest.mark.slow
def test_whole_process_section_runs_once() -> None:
    config = run.parse(["--process-rounds", "1"])
    rows = sections.cli_vs_torchinfo(config)
    assert {r.variant for r in rows} == {"archc shapes", "archc build"}
