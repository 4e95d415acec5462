"""The hint for an unknown layer kind: close real kinds, and only close ones.

A plain closest-spelling match steers to another operation (``reshape`` ->
``repeat``, ``elu`` -> ``relu``, ``swish`` -> ``hardswish``). Here a word is
first compared as torch spells modules (``BatchNorm2d``, ``hard_swish``,
``SiLU`` are ``batchnorm``, ``hardswish``, ``silu``), then checked against
operations archc knows under another name or does not have, and only then
matched by spelling, with a stricter cutoff than elsewhere.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

#: operations written under another name, or expressed another way
OTHER_NAMES: dict[str, str] = {
    "swish": "'silu' is swish (x * sigmoid(x))",
    "sum": "'add' sums branches (or the values named in from:)",
    "plus": "'add' sums branches (or the values named in from:)",
    "residual": "'add' with an empty branch is a residual connection",
    "multiply": "'mul' multiplies branches, broadcasting sizes of 1",
    "product": "'mul' multiplies branches, broadcasting sizes of 1",
    "gate": "'mul' multiplies branches, broadcasting sizes of 1",
    "cat": "'concat' joins branches on channels",
    "identity": "an empty branch ([]) of add, mul or concat is the identity",
    "reshape": "archc has no reshape: 'flatten' turns [N, C, H, W] into [N, C*H*W]",
    "view": "archc has no reshape: 'flatten' turns [N, C, H, W] into [N, C*H*W]",
    "interpolate": "'upsample' resizes by a scale or to a size (nearest or bilinear)",
    "resize": "'upsample' resizes by a scale or to a size (nearest or bilinear)",
    "deconv": "'conv_transpose' is the transposed convolution",
    "droppath": "'stochastic_depth' is drop path",
    "split": "'channel_split' takes one of equal parts of the channels",
    "chunk": "'channel_split' takes one of equal parts of the channels",
    "sequential": "a list of layers is already applied in sequence",
}

#: torch operations that are not layer kinds of archc: no misleading match
NOT_KINDS = frozenset(
    "elu selu celu prelu rrelu mish softplus softsign softshrink hardshrink tanhshrink "
    "hardtanh logsigmoid softmax logsoftmax softmin glu threshold instancenorm "
    "localresponsenorm embedding lstm gru rnn transformer multiheadattention "
    "fold unfold pad zeropad reflectionpad replicationpad".split()
)

_DOCS = "see docs/spec-language.md#layer-kinds for the layer kinds"


def _plain(word: str) -> str:
    """``BatchNorm2d`` -> ``batchnorm``; ``hard_swish`` -> ``hardswish``."""
    word = re.sub(r"[\s_\-]", "", word.lower())
    return re.sub(r"(?<=[a-z])[123]d$", "", word)


def kind_hint(word: str, choices: Iterable[str]) -> str:
    """The hint for the unknown kind ``word``; ``choices``: the kinds,
    combinators and blocks that exist where it was written."""
    known = sorted(set(choices))
    plain = {_plain(k): k for k in reversed(known)}
    key = _plain(word)
    if key in plain:
        return f"did you mean {plain[key]!r}?"
    if key in OTHER_NAMES:
        return OTHER_NAMES[key]
    if key in NOT_KINDS:
        return f"archc has no {word!r} layer; {_DOCS}"
    close = _close(key, plain)
    if close:
        return "did you mean " + " or ".join(repr(plain[c]) for c in close) + "?"
    return _DOCS


def _close(key: str, plain: dict[str, str]) -> list[str]:
    """Spellings within a typo or two of ``key`` (the best, and any as good), or
    the longest kind ``key`` starts with (``upsample_bilinear``, ``convolution``)."""
    scored = sorted(
        ((difflib.SequenceMatcher(None, key, p).ratio(), p) for p in plain), reverse=True
    )
    best = [p for ratio, p in scored if ratio >= 0.7 and ratio >= scored[0][0] - 0.02]
    if best:
        return best[:2]
    prefixes = [p for p in plain if len(p) >= 4 and key.startswith(p)]
    return [max(prefixes, key=len)] if prefixes else []
