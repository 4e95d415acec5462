"""Specs that try to exhaust time or memory, shared by ``tests/test_reliability.py``
(refused, in bounded memory) and ``scripts/bench_attacks.py`` (how fast)."""

from __future__ import annotations

from archcompile.limits import DEFAULT_LIMITS

HEADER = "archc: 1\nname: Net\ninput: [3, 8, 8]\n"


def billion_laughs() -> str:
    """Nine levels of ten aliases each: 10**9 values once expanded."""
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    return HEADER + "\n".join(lines) + "\nblocks:\n  b: [relu]\n"


def nested_repeats(body: str) -> str:
    return HEADER + (
        "blocks:\n  b:\n    - repeat:\n        times: 10000\n        layers:\n"
        "          - repeat:\n              times: 10000\n"
        f"              layers: {body}\n"
    )


def doubling_definitions(levels: int = 30) -> str:
    lines = ["define:", "  d0:", "    layers: [{add: {a: [], b: []}}]"]
    for i in range(1, levels):
        lines += [f"  d{i}:", f"    layers: [d{i - 1}, d{i - 1}]"]
    return HEADER + "\n".join(lines) + f"\nblocks:\n  b: [d{levels - 1}]\n"


#: attacks archc refuses: name -> (spec text, the end of the first line it prints)
REFUSED = {
    "billion-laughs": (
        billion_laughs(),
        f"more than {DEFAULT_LIMITS.max_nodes:,} values after expanding YAML aliases",
    ),
    "nesting-10000": ("[" * 10_000 + "]" * 10_000, "1:65: error: nesting deeper than 64 levels"),
    "alias-nesting": (
        "\n".join(
            f"a{i}: &a{i} " + "[" * 60 + (f"*a{i - 1}" if i else "1") + "]" * 60 for i in range(30)
        ),
        "nesting deeper than 64 levels after expanding aliases",
    ),
    "repeat-1e9": (
        HEADER + "blocks:\n  b:\n    - repeat: {times: 1000000000, layers: [relu]}\n",
        "repeat 1,000,000,000 times exceeds the limit of 10,000 layers (at blocks.b[0].repeat.times)",
    ),
    "nested-repeats": (
        nested_repeats("[relu]"),
        "the network expands to more than 10,000 layers (at blocks.b[0].repeat.layers[0].repeat.layers[0])",
    ),
    "nested-repeats-of-joins": (
        nested_repeats("[{add: {a: [], b: []}}]"),
        "the network expands to more than 10,000 layers (at blocks.b[0].repeat.layers[0].repeat.layers[0])",
    ),
    "nested-repeats-of-nothing": (
        HEADER + "blocks:\n  b:\n    - repeat:\n        times: 10000\n        layers:\n"
        "          - repeat: {times: 10000, layers: []}\n          - relu\n",
        "the network expands to more than 10,000 layers (at blocks.b[0].repeat.layers[1])",
    ),
    "doubling-definitions": (
        doubling_definitions(),
        "the network expands to more than 10,000 layers (at define.d1.layers[1])",
    ),
}
