"""Shared fixtures: the bundled specs, a repository-root working directory and
an in-process runner for the ``archc`` command line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SPECS = sorted((ROOT / "specs").glob("**/*.yaml"))
TEST_SPECS = sorted((ROOT / "tests" / "specs").glob("*.yaml"))
ALL_SPECS = BUNDLED_SPECS + TEST_SPECS


#: specs whose forward pass takes seconds on a CPU (224x224 transformers and
#: ConvNeXt, torchvision's classic ImageNet networks, which tests/test_zoo_classic.py
#: checks at a small input, the mobile zoo but MobileNet v2, and the U-Net): the
#: tests that run them are marked slow (`make test-slow`)
HEAVY_SPECS = {"vit_b_16", "convnext_tiny", "mlp_mixer_s16", "swin_t"}
HEAVY_SPECS |= {"resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"}
HEAVY_SPECS |= {"vgg16_bn", "squeezenet1_1", "densenet121", "inception_v3"}
HEAVY_SPECS |= {"mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2", "regnet_y_400mf"}
HEAVY_SPECS |= {"unet"}
#: the tests over every spec that run forward passes
FORWARD_TESTS = {
    "test_generated_and_live_modules_are_interchangeable",
    "test_forward_shapes_match_static_inference_at_every_block",
    "test_macs_match_fvcore",
    "test_torchscript_of_generated_source",
    "test_torchscript_of_live_module",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = getattr(item, "callspec", None) and item.callspec.params.get("path")
        name = getattr(item, "originalname", item.name)
        if isinstance(path, Path) and path.stem in HEAVY_SPECS and name in FORWARD_TESTS:
            item.add_marker(pytest.mark.slow)


def import_source(source: str, directory: Path, name: str) -> ModuleType:
    """Write ``source`` (generated code) to ``directory/name.py`` and import it."""
    path = directory / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spec_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def assert_ruff_accepts(path: Path) -> None:
    """``ruff check`` and ``ruff format --check`` with ruff's default settings
    (``--isolated``: not this project's configuration) pass on ``path``."""
    for command in (["check"], ["format", "--check", "--diff"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--isolated", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spec paths in messages and generated headers are relative to the working
    directory; run every test from the repository root so they are stable."""
    monkeypatch.chdir(ROOT)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``archc ARGS...`` in-process through the real entry point."""
    from archcompile.cli import run

    def invoke(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["archc", *map(str, args)])
        code = 0
        try:
            run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
