"""``archc graph``: every bundled spec drawn by the real Graphviz ``dot``, and
the SVG read back as XML. The picture must carry the annotated tree's names,
kinds, parameter counts and shapes, draw ``from:`` skips, joins and several
outputs as wired, and stay valid whatever text a spec holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ALL_SPECS, ROOT, spec_id

from archcompile import load_spec, load_spec_text
from archcompile.graphviz_render import graph_dot, render, shape_text
from archcompile.ir import BranchNode, JoinNode

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (make installs it)"
)
SVG = "{http://www.w3.org/2000/svg}"
INCEPTION = ROOT / "specs" / "zoo" / "inception_v1.yaml"


@dataclass
class Picture:
    """What an SVG drawn by dot shows: nodes and clusters by title (their
    texts), edges by (tail, head) (their label and whether dashed)."""

    nodes: dict[str, list[str]] = field(default_factory=dict)
    clusters: list[list[str]] = field(default_factory=list)
    edges: dict[tuple[str, str], list[tuple[str, bool]]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)

    def out_labels(self, tail: str) -> set[str]:
        return {label for (t, _), found in self.edges.items() if t == tail for label, _ in found}


def parse_svg(data: bytes) -> Picture:
    picture = Picture()
    for group in ET.fromstring(data).iter(f"{SVG}g"):
        title = group.findtext(f"{SVG}title")
        texts = [t.text or "" for t in group.iter(f"{SVG}text")]
        kind = group.get("class")
        if kind == "node":
            picture.nodes[title] = texts
        elif kind == "cluster":
            picture.clusters.append(texts)
        elif kind == "edge":
            tail, head = title.split("->")
            dashed = any(p.get("stroke-dasharray") for p in group.iter(f"{SVG}path"))
            picture.edges.setdefault((tail, head), []).append(("".join(texts), dashed))
    picture.texts = [t.text or "" for t in ET.fromstring(data).iter(f"{SVG}text")]
    return picture


def draw(cli, tmp_path: Path, spec: Path | str, *args: str) -> Picture:
    """``archc graph SPEC -o x.svg ARGS``, through the real entry point."""
    target = tmp_path / "graph.svg"
    result = cli("graph", spec, "-o", target, *args)
    assert result.code == 0, result.err
    assert f"wrote {target}" in result.out
    return parse_svg(target.read_bytes())


def params_text(params: int) -> str:
    return f"{params:,} params"


@needs_dot
@pytest.mark.parametrize("spec", ALL_SPECS, ids=spec_id)
def test_every_block_is_drawn_with_its_shape_and_parameters(cli, tmp_path, spec):
    picture = draw(cli, tmp_path, spec)
    tree = load_spec(spec).tree()
    assert picture.nodes["input"] == ["input", shape_text(tree.input)]
    for block in tree.blocks:
        texts = picture.nodes[block.name]
        assert texts[0] == block.name
        assert texts[-1] == params_text(block.params)
        # a block's value flows out labelled with its shape (to readers, outputs)
        assert picture.out_labels(block.name) == {shape_text(block.shape)}, block.name
    for output in tree.graph.outputs:
        assert (output.name, f"output:{output.name}") in picture.edges
    assert params_text(tree.total_params) in " ".join(picture.texts)


@needs_dot
@pytest.mark.parametrize("spec", ALL_SPECS, ids=spec_id)
def test_depth_2_draws_every_layer_inside_its_block(cli, tmp_path, spec):
    picture = draw(cli, tmp_path, spec, "--depth", "2")
    tree = load_spec(spec).tree()
    clusters = {texts[0] for texts in picture.clusters}
    for block in tree.blocks:
        assert block.name in clusters
        assert block.name not in picture.nodes
        for step in block.children:
            texts = picture.nodes[step.name]
            kind = step.node.mode if isinstance(step.node, JoinNode) else step.kind
            assert texts[1] == kind, step.name
            if not isinstance(step.node, BranchNode):  # a join's params are its branches'
                assert texts[-1] == params_text(step.params), step.name
            if step is block.children[-1]:
                assert picture.out_labels(step.name) <= {shape_text(block.shape)}


@needs_dot
def test_unet_skip_draws_the_skip_from_enc1_into_dec(cli, tmp_path):
    spec = "tests/specs/unet_skip.yaml"
    picture = draw(cli, tmp_path, spec)
    assert picture.edges[("enc1", "dec")] == [("8x16x16", False)]
    assert picture.edges[("bottleneck", "dec")] == [("16x16x16", False)]
    picture = draw(cli, tmp_path, spec, "--depth", "3")
    assert picture.edges[("enc1[0]", "dec[0]")] == [("8x16x16", False)]
    assert picture.nodes["dec[0]"][:2] == ["dec[0]", "concat"]
    # the residual's add reads its block's input: the conv before the call
    assert ("enc2[0]", "enc2[1][2]") in picture.edges
    assert picture.nodes["enc2[1][0]"][:2] == ["conv1", "conv"]


@needs_dot
def test_three_outputs_draws_the_training_only_output_dashed(cli, tmp_path):
    picture = draw(cli, tmp_path, "tests/specs/three_outputs.yaml")
    assert picture.nodes["output:aux"] == ["aux", "training-only output"]
    assert picture.edges[("aux", "output:aux")] == [("10", True)]
    assert picture.edges[("body", "aux")] == [("16x4x4", True)]
    assert picture.edges[("main", "output:main")] == [("10", False)]
    assert picture.edges[("side_fc", "output:side_fc")] == [("4", False)]
    assert picture.edges[("stem", "side")] == [("8x16x16", False)]


@needs_dot
def test_depth_3_shows_inception_branches_as_clusters(cli, tmp_path):
    tree = load_spec(INCEPTION).tree()
    inceptions = [b for b in tree.blocks if b.name.startswith("inception")]
    assert len(inceptions) == 9
    shallow = draw(cli, tmp_path, INCEPTION, "--depth", "2")
    assert not [c for c in shallow.clusters if c[0].startswith("branch")]
    picture = draw(cli, tmp_path, INCEPTION, "--depth", "3")
    for number in "1234":
        branches = [c for c in picture.clusters if c[0] == f"branch{number}"]
        assert len(branches) == 9
    block = tree.block("inception3a")
    concat = block.children[0].children[0]
    join = picture.nodes[concat.name]
    assert join[1] == "concat"
    heads = {tail for (tail, head) in picture.edges if head == concat.name}
    assert heads == {b.children[-1].name for b in concat.children}
    assert picture.out_labels(concat.name) == {"256x28x28"}
    branch1 = next(c for c in picture.clusters if c[0] == "branch1")
    assert " branch · 12,416 params" in branch1
    # the auxiliary classifiers, needed only by training-only outputs, are dashed
    assert picture.edges[("aux1[0][6]", "output:aux1")] == [("1000", True)]


@needs_dot
def test_png_and_dot_outputs(cli, tmp_path):
    spec = "tests/specs/tiny_cnn.yaml"
    png = tmp_path / "net.png"
    assert cli("graph", spec, "-o", png).code == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    dot_file = tmp_path / "net.dot"
    assert cli("graph", spec, "-o", dot_file, "--depth", "2").code == 0
    printed = cli("graph", spec, "-o", "-", "--depth", "2")
    assert printed.code == 0
    assert dot_file.read_text() == printed.out == graph_dot(load_spec(spec).tree(), 2)


def test_default_output_is_build_spec_svg(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = ROOT / "tests" / "specs" / "tiny_cnn.yaml"
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    result = cli("graph", spec)
    assert result.code == 0, result.err
    assert (tmp_path / "build" / "tiny_cnn.svg").read_bytes().lstrip().startswith(b"<?xml")


def test_set_and_input_change_the_picture(cli):
    spec = "tests/specs/tiny_cnn.yaml"
    plain = cli("graph", spec, "-o", "-").out
    changed = cli("graph", spec, "-o", "-", "--set", "num_classes=7", "--input", "1x32x32").out
    assert '"input" -> ' in plain and plain != changed
    assert 'label="7"' in changed and "1x32x32" in changed


def test_unknown_suffix_is_a_usage_error(cli, tmp_path):
    result = cli("graph", "tests/specs/tiny_cnn.yaml", "-o", tmp_path / "net.pdf")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert ".svg, .png or .dot" in result.err
    assert not (tmp_path / "net.pdf").exists()


def test_missing_dot_is_a_located_error_with_a_hint(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    result = cli("graph", "tests/specs/tiny_cnn.yaml", "-o", tmp_path / "net.svg")
    assert result.code == 1
    assert "Graphviz's 'dot' program is not installed" in result.err
    assert "-o FILE.dot" in result.err
    assert cli("graph", "tests/specs/tiny_cnn.yaml", "-o", tmp_path / "net.dot").code == 0


def test_dot_text_is_deterministic_across_processes():
    """Same spec, same bytes: across loads, and across hash seeds (no set or
    dict order of ids leaks into the text)."""
    spec = "specs/zoo/inception_v1.yaml"
    once = graph_dot(load_spec(spec).tree(), 4)
    assert graph_dot(load_spec(spec).tree(), 4) == once
    command = [sys.executable, "-m", "archcompile", "graph", spec, "--depth", "4", "-o", "-"]
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=ROOT, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == once


HOSTILE = [
    'quote " and backslash \\',
    '"]; evil [label="pwned"]; x -> y; //',
    "<b>tags</b> & &amp; &#0; ]]> <!-- -->",
    "}} digraph { a -> b",
    "\\N \\G \\l escapes",
    "bell\x07 and nul\x00",
    "emoji 🙂 and ünïcode",
]


@needs_dot
def test_hostile_text_cannot_break_the_dot_syntax():
    """Names are identifiers once loaded, but descriptions are free text, and
    the builder must not trust either: every label is escaped."""
    description = " / ".join(HOSTILE)
    text = (ROOT / "tests/specs/three_outputs.yaml").read_text()
    written = f"name: ThreeHeads\ndescription: {json.dumps(description, ensure_ascii=False)}"
    spec = load_spec_text(text.replace("name: ThreeHeads", written))
    tree = spec.tree()
    assert tree.graph.description == description
    plain = parse_svg(render(graph_dot(tree, 2), "svg"))
    steps = [step for block in tree.blocks for _, step in block.walk(2)]
    for index, step in enumerate(steps):
        step.name = f"{HOSTILE[index % len(HOSTILE)]} #{index}"
        step.kind = HOSTILE[(index + 1) % len(HOSTILE)]
    picture = parse_svg(render(graph_dot(tree, 2), "svg"))
    assert len(picture.nodes) == len(plain.nodes)
    assert len(picture.clusters) == len(plain.clusters)
    assert len(picture.edges) == len(plain.edges)
    caption = " ".join(" ".join(picture.texts).split())  # the description wraps
    for hostile in HOSTILE:
        shown = hostile.replace("\x07", "\ufffd").replace("\x00", "\ufffd")
        assert any(text.startswith(shown + " #") for text in picture.texts), shown
        assert " ".join(shown.split()) in caption
