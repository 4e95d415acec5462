"""Static shape inference and counts against the tutorial's reference figures."""

from __future__ import annotations

import pytest

import archcompile
from archcompile.errors import ShapeError
from archcompile.shapes import SHAPE_RULES, format_shape

GOOGLENET_BLOCKS = {
    "block1": (64, 23, 23),
    "block2": (192, 11, 11),
    "block3": (480, 5, 5),
    "block4": (832, 2, 2),
    "block5": (1024, 1, 1),
    "head": (10,),
}


def test_googlenet_reference_shapes_and_counts() -> None:
    report = archcompile.infer_shapes(archcompile.load_spec("specs/googlenet.yaml"))
    assert {b.name: b.shape for b in report.blocks} == GOOGLENET_BLOCKS
    # the tutorial's hand-written PyTorch model, as counted by sum(p.numel()) and fvcore
    assert report.total_params == 5_977_530
    assert report.macs_per_image == 214_706_432


def test_json_at_batch_4_matches_the_tutorial() -> None:
    spec = archcompile.load_spec("specs/googlenet.yaml")
    data = archcompile.infer_shapes(spec).to_json(spec.display, batch=4)
    assert data["input"] == [4, 1, 96, 96]
    assert [(b["name"], b["shape"]) for b in data["blocks"]] == [
        (name, [4, *shape]) for name, shape in GOOGLENET_BLOCKS.items()
    ]
    assert data["total_params"] == 5_977_530
    assert data["total_macs"] == 4 * 214_706_432


def test_one_inception_on_a_3_channel_64x64_input() -> None:
    spec = archcompile.load_spec_text(
        "archc: 1\nname: One\ninput: [3, 64, 64]\n"
        "blocks:\n  mixed:\n    - inception: [64, [96, 128], [16, 32], 32]\n"
    )
    assert archcompile.infer_shapes(spec).block("mixed").shape == (256, 64, 64)


def test_batchnorm_default_reaches_inside_inception() -> None:
    plain = archcompile.infer_shapes(archcompile.load_spec("specs/googlenet.yaml"))
    bn = archcompile.infer_shapes(archcompile.load_spec("specs/googlenet_bn.yaml"))
    convs = [step for block in bn.blocks for _, step in block.walk(99) if step.kind == "conv"]
    assert convs and all(
        c.node.op.norm.kind == "batch" and c.node.op.activation == "relu" for c in convs
    )
    assert len(convs) == 2 + 1 + 9 * 6  # stem convs, block2's second, six per Inception
    # no conv bias (the norm replaces it), plus a scale and a shift per channel
    conv_out = sum(c.shape[0] for c in convs)
    assert bn.total_params == plain.total_params - conv_out + 2 * conv_out
    assert bn.macs_per_image == plain.macs_per_image


def _walk(nodes):
    for node in nodes:
        yield node
        if node.node == "call":
            yield from _walk(node.body)
        elif node.node in ("concat", "add", "mul"):
            for branch in node.branches.values():
                yield from _walk(branch)


def test_overrides_change_shapes() -> None:
    spec = archcompile.load_spec("specs/googlenet.yaml", {"num_classes": "100"}, (3, 128, 128))
    report = archcompile.infer_shapes(spec)
    assert report.block("head").shape == (100,)
    assert report.block("block1").shape == (64, 31, 31)


def _one_layer(layer: str, input_shape: str = "[3, 32, 32]") -> archcompile.Spec:
    return archcompile.load_spec_text(
        f"archc: 1\nname: One\ninput: {input_shape}\nblocks:\n  b:\n    - {layer}\n"
    )


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        ("conv: {out: 8, kernel: 3}", (8, 30, 30)),
        ("conv: {out: 8, kernel: 3, padding: same}", (8, 32, 32)),
        ("conv: {out: 8, kernel: [3, 5], stride: [1, 2], padding: [1, 2]}", (8, 32, 16)),
        ("conv: {out: 8, kernel: 3, dilation: 2}", (8, 28, 28)),
        ("conv: {out: 6, kernel: 1, groups: 3}", (6, 32, 32)),
        ("maxpool: {kernel: 3, stride: 2}", (3, 15, 15)),
        ("maxpool: {kernel: 3, stride: 2, ceil_mode: true}", (3, 16, 16)),
        ("avgpool: {kernel: 2}", (3, 16, 16)),
        ("global_avgpool", (3, 1, 1)),
        ("flatten", (3072,)),
        ("lrn", (3, 32, 32)),
    ],
)
def test_layer_rules(layer: str, shape: tuple[int, ...]) -> None:
    assert archcompile.infer_shapes(_one_layer(layer)).block("b").shape == shape


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("conv: {out: 8, kernel: 40}", "kernel 40 is larger than the padded input 32"),
        ("maxpool: {kernel: 33}", "kernel 33 is larger than the padded input 32"),
        ("conv: {out: 8, kernel: 1, groups: 2}", "groups (2) must divide the input channels (3)"),
        (
            "linear: {out: 8}",
            "linear expects [N, features] or tokens [N, L, D] but receives [N, 3, 32, 32]",
        ),
    ],
)
def test_shape_errors_name_the_layer_and_its_input(layer: str, message: str) -> None:
    with pytest.raises(ShapeError) as info:
        archcompile.infer_shapes(_one_layer(layer))
    diagnostic = info.value.first
    assert message in diagnostic.message
    assert diagnostic.path == "blocks.b[0]"
    assert (diagnostic.file, diagnostic.line) == ("<spec>", 6)


def test_image_layer_after_flatten() -> None:
    spec = archcompile.load_spec_text(
        "archc: 1\nname: One\ninput: [3, 8, 8]\nblocks:\n  b:\n    - flatten\n    - maxpool: {kernel: 2}\n"
    )
    with pytest.raises(ShapeError, match=r"maxpool expects an image \[N, C, H, W\]"):
        archcompile.infer_shapes(spec)


def test_concat_spatial_mismatch_names_both_branches() -> None:
    spec = archcompile.load_spec_text(
        "archc: 1\nname: One\ninput: [3, 8, 8]\nblocks:\n  b:\n    - concat:\n"
        "        left: [{conv: {out: 4, kernel: 1}}]\n"
        "        right: [{maxpool: {kernel: 2}}]\n"
    )
    with pytest.raises(ShapeError) as info:
        archcompile.infer_shapes(spec)
    message = info.value.first.message
    assert "left gives [N, 4, 8, 8], right gives [N, 3, 4, 4]" in message


def test_format_shape() -> None:
    assert format_shape((64, 23, 23)) == "[N, 64, 23, 23]"
    assert format_shape((10,), 4) == "[4, 10]"


def test_every_kind_has_a_shape_rule() -> None:
    from archcompile.layers import LAYER_KINDS

    assert set(SHAPE_RULES) == set(LAYER_KINDS)
