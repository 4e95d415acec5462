"""The ``archc`` command line: output, exit codes, file safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from archcompile.backends import output


def test_shapes_table(cli) -> None:
    result = cli("shapes", "specs/googlenet.yaml", "--batch", "4")
    assert result.code == 0, result.err
    for row in (
        "[4, 64, 23, 23]",
        "[4, 192, 11, 11]",
        "[4, 480, 5, 5]",
        "[4, 832, 2, 2]",
        "[4, 1024, 1, 1]",
        "[4, 10]",
    ):
        assert row in result.out
    assert "5,977,530" in result.out
    assert f"{4 * 214_706_432:,}" in result.out


def test_shapes_depth_2_lists_layers(cli) -> None:
    result = cli("shapes", "specs/googlenet.yaml", "--depth", "2")
    assert "inception" in result.out and "maxpool" in result.out
    assert result.out.count("inception") == 9


def test_shapes_json(cli) -> None:
    result = cli(
        "shapes",
        "specs/googlenet.yaml",
        "--json",
        "--set",
        "num_classes=100",
        "--input",
        "1x128x128",
    )
    data = json.loads(result.out)
    assert data["spec"] == "specs/googlenet.yaml"
    assert data["input"] == [1, 1, 128, 128]
    assert data["blocks"][-1] == {
        "name": "head",
        "kind": "block",
        "shape": [1, 100],
        "params": 102500,
        "macs": 102400,
    }
    assert set(data) == {
        "schema",
        "spec",
        "name",
        "input",
        "outputs",
        "blocks",
        "total_params",
        "total_macs",
    }
    assert data["schema"] == 1
    assert data["outputs"] == [
        {"name": "head", "shape": [1, 100], "training_only": False, "loss_weight": 1.0}
    ]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_shapes_json_follows_depth(cli, depth: int) -> None:
    """--json nests layers (2) and the inside of composite blocks (3), as the table does."""
    data = json.loads(cli("shapes", "specs/googlenet.yaml", "--json", "--depth", str(depth)).out)

    def deepest(item: dict, level: int = 1) -> int:
        return max([level] + [deepest(c, level + 1) for c in item.get("children", [])])

    assert max(deepest(b) for b in data["blocks"]) == depth
    if depth >= 2:
        inception = data["blocks"][2]["children"][0]
        assert inception["kind"] == "inception" and inception["shape"] == [1, 256, 11, 11]
        assert (
            sum(c["params"] for c in data["blocks"][2]["children"]) == data["blocks"][2]["params"]
        )


@pytest.mark.parametrize("command", ["shapes", "build"])
def test_shapes_and_build_do_not_import_torch(command: str, tmp_path: Path) -> None:
    args = (
        ["shapes", "specs/googlenet.yaml"]
        if command == "shapes"
        else ["build", "specs/googlenet.yaml", "-o", str(tmp_path / "g.py")]
    )
    code = (
        "import sys\n"
        f"sys.argv = ['archc', *{args!r}]\n"
        "from archcompile.cli import run\n"
        "try:\n    run()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip().endswith("NO TORCH")


def test_console_script_is_installed() -> None:
    archc = Path(sys.executable).with_name("archc")
    result = subprocess.run(
        [archc, "shapes", "specs/googlenet.yaml", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["total_params"] == 5_977_530


def test_missing_spec_is_one_line(cli) -> None:
    result = cli("shapes", "specs/nope.yaml")
    assert (result.code, result.err) == (1, "specs/nope.yaml: error: no such file\n")


def test_directory_as_spec(cli) -> None:
    result = cli("shapes", "specs")
    assert (result.code, result.err.strip()) == (1, "specs: error: is a directory, not a spec file")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "num_classes"], "--set expects key=value"),
        (["--set", "num_class=3"], "the spec has no parameter 'num_class'"),
        (["--input", "1x96"], "--input expects CxHxW"),
    ],
)
def test_usage_errors_exit_2(cli, args: list[str], message: str) -> None:
    result = cli("shapes", "specs/googlenet.yaml", *args)
    assert result.code == 2
    assert message in result.err


def test_typer_usage_error_exits_2(cli) -> None:
    assert cli("shapes").code == 2


def test_internal_errors_hide_the_traceback_unless_debug(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archcompile

    def broken(_spec):
        raise RuntimeError("boom")

    monkeypatch.setattr(archcompile, "infer_shapes", broken)
    result = cli("shapes", "specs/googlenet.yaml")
    assert result.code == 3
    assert "internal error: RuntimeError: boom" in result.err and "Traceback" not in result.err
    with pytest.raises(RuntimeError, match="boom"):
        cli("--debug", "shapes", "specs/googlenet.yaml")


# -- archc build ------------------------------------------------------------------


def test_build_default_path_and_stdout(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ROOT / "specs" / "googlenet.yaml"
    monkeypatch.chdir(tmp_path)
    result = cli("build", spec)
    assert result.code == 0, result.err
    written = tmp_path / "build" / "googlenet.py"
    assert f"wrote {Path('build/googlenet.py')}" in result.out
    stdout = cli("build", spec, "-o", "-").out
    assert stdout == written.read_text()


def test_build_refuses_to_lose_files(cli, tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text("# my own model\n")
    result = cli("build", "specs/googlenet.yaml", "-o", target)
    assert result.code == 1 and "was not written by archc" in result.err
    assert target.read_text() == "# my own model\n"
    assert cli("build", "specs/googlenet.yaml", "-o", target, "--force").code == 0
    # an archc file may be regenerated; a hand-edited one may not
    assert cli("build", "specs/googlenet_bn.yaml", "-o", target).code == 0
    target.write_text(target.read_text().replace("kernel_size=7", "kernel_size=5"))
    result = cli("build", "specs/googlenet.yaml", "-o", target)
    assert result.code == 1 and "edited by hand" in result.err
    assert "--force" in result.err


def test_build_refuses_a_directory(cli, tmp_path: Path) -> None:
    result = cli("build", "specs/googlenet.yaml", "-o", tmp_path)
    assert result.code == 1 and "is a directory" in result.err


def test_build_check(cli, tmp_path: Path) -> None:
    target = tmp_path / "g.py"
    missing = cli("build", "specs/googlenet.yaml", "-o", target, "--check")
    assert missing.code == 1 and "missing" in missing.err and not target.exists()
    cli("build", "specs/googlenet.yaml", "-o", target)
    assert cli("build", "specs/googlenet.yaml", "-o", target, "--check").code == 0
    stale = cli("build", "specs/googlenet.yaml", "-o", target, "--check", "--set", "num_classes=5")
    assert stale.code == 1 and "stale" in stale.err


def test_atomic_write_keeps_the_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "g.py"
    target.write_text("old")

    def fail(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        output.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.py"]


# -- archc diff -------------------------------------------------------------------------


def test_diff_of_batchnorm_variant_is_short(cli) -> None:
    result = cli("diff", "specs/googlenet.yaml", "specs/googlenet_bn.yaml")
    assert result.code == 1
    lines = result.out.splitlines()
    added = [line for line in lines if line.startswith("+ ")]
    assert "+            nn.BatchNorm2d(c2_reduce)," in lines
    assert "+            nn.BatchNorm2d(192)," in lines
    # per conv: one "bias=False" change and one BatchNorm line (6 in Inception,
    # 3 in the stem); plus the parameter count in the model's docstring
    assert len(added) == 2 * (6 + 3) + 1
    assert "archc-spec-sha256" not in result.out  # headers are not part of the diff
    assert "Blocks that changed" in result.out and "114,944" in result.out


def test_diff_of_equal_specs_exits_0(cli) -> None:
    result = cli("diff", "specs/googlenet.yaml", "specs/googlenet.yaml")
    assert result.code == 0 and "generate the same source" in result.out


def test_build_writes_readable_files_and_refuses_odd_combinations(cli, tmp_path: Path) -> None:
    target = tmp_path / "g.py"
    assert cli("build", "specs/googlenet.yaml", "-o", target).code == 0
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    result = cli("build", "specs/googlenet.yaml", "-o", "-", "--check")
    assert result.code == 2 and "need a file" in result.err
    stale = cli("build", "specs/googlenet.yaml", "-o", target, "--check", "--set", "num_classes=3")
    assert "--set num_classes=3" in stale.err


def test_a_bad_set_value_is_blamed_on_the_option(cli) -> None:
    result = cli("shapes", "specs/googlenet.yaml", "--set", "num_classes=0")
    assert result.code == 1
    first, note = result.err.splitlines()[:2]
    assert (
        first
        == "--set num_classes=0: error: a channel count must be at least 1, got 0 (at params.num_classes)"
    )
    assert "blocks.head[1].linear (specs/googlenet.yaml:36)" in note
