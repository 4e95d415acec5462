"""Every option of ``archc train`` changes what it says it changes.

Each test fails when its option is ignored or mis-applied: a tiny
deterministic run (the first step's loss depends on the initialization, the
batch's transforms, the loss and the precision, before any update), or a
direct check of the optimizer, the schedule, the loss or a batch transform.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import archcompile
from archcompile.ir import Output
from archcompile.train import checkpoint, trainer
from archcompile.train.augment import BatchTransforms, erase, erasing_draws
from archcompile.train.data import DEFAULT_DATA_DIR
from archcompile.train.ema import EMA
from archcompile.train.evaluate import evaluate
from archcompile.train.losses import output_loss
from archcompile.train.schedule import lr_factor, make_optimizer
from archcompile.train.trainer import TrainConfig, train

needs_data = pytest.mark.skipif(
    not (DEFAULT_DATA_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)

TINY = "tests/specs/tiny_cnn.yaml"
#: 4 steps of 16 images; evaluation on 16 images
QUICK = {"batch_size": 16, "limit_train": 64, "limit_test": 16, "lr": 0.05}


def _records(out: Path, kind: str = "train") -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def _first_loss(tmp_path: Path, name: str, spec=None, **config) -> float:
    spec = spec or archcompile.load_spec(TINY)
    train(spec, TrainConfig(max_steps=1, **{**QUICK, **config}), tmp_path / name)
    return _records(tmp_path / name)[0]["loss"]


# -- options that change the first step's loss (before any update) -------------


@needs_data
@pytest.mark.parametrize(
    "option",
    [
        {"label_smoothing": 0.2},
        {"augment": True},
        {"random_erasing": 1.0},
        {"precision": "bf16"},
        {"seed": 1},
    ],
    ids=lambda o: next(iter(o)),
)
def test_option_changes_the_first_loss(tmp_path: Path, option: dict) -> None:
    base = _first_loss(tmp_path, "base")
    assert _first_loss(tmp_path, "again") == base  # deterministic: only the option differs
    changed = _first_loss(tmp_path, "option", **option)
    assert changed != base
    if "precision" in option:  # bfloat16 rounding, not another computation
        assert abs(changed - base) < 0.05


@needs_data
def test_init_in_the_spec_reaches_training(tmp_path: Path) -> None:
    text = Path(TINY).read_text() + "init: {default: zeros, bias: zeros}\n"
    spec = archcompile.load_spec_text(text)
    # every logit is 0: the loss is exactly ln 10 whatever the images
    assert _first_loss(tmp_path, "zeros", spec) == pytest.approx(math.log(10), abs=1e-6)
    assert _first_loss(tmp_path, "default") != pytest.approx(math.log(10), abs=1e-3)


# -- the optimizer, weight decay and its exclusions ------------------------------


def _bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2))


@pytest.mark.parametrize(
    ("name", "kind", "momentum", "decay"),
    [("sgd", torch.optim.SGD, 0.0, 0.0), ("sgd-momentum", torch.optim.SGD, 0.9, 5e-4)],
)
def test_sgd_optimizers(name: str, kind: type, momentum: float, decay: float) -> None:
    optimizer = make_optimizer(_bn_model(), name, 0.1, None)
    assert type(optimizer) is kind
    assert optimizer.param_groups[0]["momentum"] == momentum
    assert optimizer.param_groups[0]["nesterov"] is (momentum > 0)
    assert optimizer.param_groups[0]["weight_decay"] == decay


def test_adamw_and_weight_decay_override() -> None:
    optimizer = make_optimizer(_bn_model(), "adamw", 1e-3, None)
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.param_groups[0]["weight_decay"] == 0.05
    assert make_optimizer(_bn_model(), "adamw", 1e-3, 0.3).param_groups[0]["weight_decay"] == 0.3


@pytest.mark.parametrize(
    ("name", "factor"),
    # Nesterov's first step applies the decayed gradient (1 + momentum) times;
    # AdamW decays by lr * decay, and a zero gradient moves nothing else
    [("sgd-momentum", 1 - 0.1 * 0.5 * 1.9), ("adamw", 1 - 0.1 * 0.5)],
)
def test_weight_decay_shrinks_weights_but_not_biases_or_norms(name: str, factor: float) -> None:
    """One step with zero gradients: only decay moves a parameter."""
    model = _bn_model()
    before = {k: v.clone() for k, v in model.named_parameters()}
    optimizer = make_optimizer(model, name, 0.1, 0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for key, value in model.named_parameters():
        if key in ("0.weight", "3.weight"):  # conv and linear weights: decayed
            assert torch.allclose(value, before[key] * factor), key
        else:  # biases, BatchNorm weight and bias: untouched
            assert torch.equal(value, before[key]), key


# -- the schedule and its warm-up -------------------------------------------------


def test_schedules_and_warmup() -> None:
    constant = lr_factor("constant", 100, warmup=4)
    assert [constant(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = lr_factor("cosine", 104, warmup=4)
    assert cosine(3) == 1.0 and cosine(4) == 1.0
    assert cosine(54) == pytest.approx(0.5) and cosine(104) == pytest.approx(0.0)
    onecycle = lr_factor("onecycle", 100)
    assert onecycle(0) == pytest.approx(1 / 25) and onecycle(25) == pytest.approx(1.0)
    assert onecycle(100) == pytest.approx(1 / 25 / 1e4)
    assert lr_factor("onecycle", 100, warmup=10)(10) == pytest.approx(1.0)


@needs_data
def test_training_follows_the_schedule(tmp_path: Path) -> None:
    config = TrainConfig(max_steps=4, schedule="cosine", warmup_steps=2, **QUICK)
    train(archcompile.load_spec(TINY), config, tmp_path)
    rates = [r["lr"] for r in _records(tmp_path)]
    factor = lr_factor("cosine", 4, 2)
    assert rates == pytest.approx([0.05 * factor(s) for s in range(4)])
    assert rates[0] == pytest.approx(0.025)


# -- label smoothing, flips, erasing, test-time flips -----------------------------


def test_label_smoothing_is_the_smoothed_cross_entropy() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y = torch.tensor([0, 1])
    loss, _ = output_loss(logits, y, (Output(name="head"),), 0.3)
    logp = logits.log_softmax(1)
    nll = -logp[torch.arange(2), y]
    expected = (0.7 * nll + 0.3 * -logp.mean(1)).mean()
    assert loss.item() == pytest.approx(expected.item())


def test_flips_mirror_the_chosen_half() -> None:
    config = TrainConfig(augment=True, seed=3)
    transform = BatchTransforms(config, epoch=0, count=64)
    x = torch.randn(64, 1, 4, 4)
    batch = torch.arange(64)
    y = transform(x, batch)
    flipped = transform.flips
    assert 16 < int(flipped.sum()) < 48
    assert torch.equal(y[flipped], x[flipped].flip(3))
    assert torch.equal(y[~flipped], x[~flipped])
    other = BatchTransforms(config, epoch=1, count=64).flips
    assert not torch.equal(flipped, other)  # a new draw each epoch
    assert BatchTransforms(TrainConfig(), 0, 64)(x, batch) is x


def test_random_erasing_erases_one_rectangle_per_chosen_image() -> None:
    x = torch.ones(400, 1, 20, 20)
    draws = erasing_draws(0, 0, 400)
    y = erase(x, draws, 0.5)
    erased = (y == 0).flatten(1).sum(1)
    chosen = draws[:, 0] < 0.5
    assert (erased[~chosen] == 0).all()
    assert (erased[chosen] >= 0.02 * 400 * 0.5).all() and (erased[chosen] <= 400).all()
    assert 0.4 < chosen.float().mean() < 0.6
    for image in y[chosen][:20, 0]:  # one rectangle: its rows and columns
        rows, cols = (image == 0).nonzero(as_tuple=True)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box == len(rows)


def test_tta_flip_averages_the_mirror_images_logits() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.LazyLinear(10))
    images = torch.randn(32, 1, 8, 8)
    model(images)
    labels = torch.randint(0, 10, (32,))
    names = tuple(str(i) for i in range(10))
    plain = evaluate(model, images, labels, names, channels_last=False)
    flipped = evaluate(model, images, labels, names, channels_last=False, flip=True)
    with torch.no_grad():
        logits = (model(images) + model(images.flip(3))) / 2
    expected = nn.functional.cross_entropy(logits, labels).item()
    assert flipped.loss == pytest.approx(expected, rel=1e-5)
    assert flipped.loss != pytest.approx(plain.loss, rel=1e-3)


# -- EMA, memory format -----------------------------------------------------------


def test_ema_follows_the_rule() -> None:
    model = nn.Linear(2, 1, bias=False)
    ema = EMA(model, 0.99)
    start = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # first decay: min(0.99, 1/10)
    assert torch.allclose(ema.model.weight, start + 0.9)
    assert ema.rate() == pytest.approx(2 / 11)


@needs_data
def test_ema_weights_are_evaluated_and_saved(tmp_path: Path) -> None:
    spec = archcompile.load_spec(TINY)
    train(spec, TrainConfig(max_steps=4, ema=0.5, **QUICK), tmp_path / "ema")
    train(spec, TrainConfig(max_steps=4, **QUICK), tmp_path / "plain")
    folder = checkpoint.resolve(tmp_path / "ema")
    saved = load_file(folder / checkpoint.MODEL_FILE)
    trained = load_file(folder / checkpoint.STATE_FILE)
    plain = load_file(checkpoint.resolve(tmp_path / "plain") / checkpoint.MODEL_FILE)
    key = next(k for k, v in saved.items() if v.ndim == 4)  # a conv weight
    # the trained weights are those of the run without EMA; the saved ones are the average
    assert torch.equal(trained[f"trained.{key}"], plain[key])
    assert not torch.equal(saved[key], plain[key])
    evaluations = [r["loss"] for r in _records(tmp_path / "ema", "eval")]
    assert evaluations != [r["loss"] for r in _records(tmp_path / "plain", "eval")]


@needs_data
@pytest.mark.parametrize("channels_last", [True, False])
def test_memory_format_is_applied(tmp_path: Path, monkeypatch, channels_last: bool) -> None:
    built = []

    def recording(*args, **kwargs):
        built.append(archcompile.backends.torch_build.build_tree(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(trainer, "build_tree", recording)
    config = TrainConfig(max_steps=1, channels_last=channels_last, **QUICK)
    train(archcompile.load_spec(TINY), config, tmp_path)
    conv = [m for m in built[0].modules() if isinstance(m, nn.Conv2d)][-1].weight  # 8 channels in
    assert conv.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert conv.is_contiguous() is not channels_last


@needs_data
def test_seed_fixes_the_initialization(tmp_path: Path, monkeypatch) -> None:
    """The seed decides the initial weights (the order of examples too: see
    test_option_changes_the_first_loss[seed] and test_train.py)."""
    initial = []

    def recording(*args, **kwargs):
        model = archcompile.backends.torch_build.build_tree(*args, **kwargs)
        initial.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    monkeypatch.setattr(trainer, "build_tree", recording)
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        train(
            archcompile.load_spec(TINY),
            TrainConfig(max_steps=1, seed=seed, **QUICK),
            tmp_path / name,
        )
    a, b, c = initial
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(torch.equal(a[k], c[k]) for k in a if k.endswith("weight"))
