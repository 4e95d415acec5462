"""``extends:`` confined to the spec's own folder tree (and folders allowed
with --allow-extends); errors never show the content of a file that is not a
spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SECRET = "SECRET-TOKEN-4242"
SPEC_BODY = "archc: 1\nname: Net\ninput: [1, 8, 8]\nblocks:\n  b: [relu]\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp/outside/ holds secrets and a valid spec; tmp/project/ holds the specs."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(f"{SECRET}\n")
    (outside / "base.yaml").write_text(SPEC_BODY)
    (outside / ".env").write_text(f"TOKEN={SECRET}\n")
    root = tmp_path / "project"
    (root / "sub").mkdir(parents=True)
    (root / "base.yaml").write_text(SPEC_BODY)
    (root / "notes.yaml").write_text(f"{SECRET}\n")
    (root / ".env").write_text(f"TOKEN={SECRET}\n")
    (root / "link.yaml").symlink_to(outside / "secret.yaml")
    (root / "loop.yaml").symlink_to(root / "loop.yaml")
    os.mkfifo(root / "pipe.yaml")
    return root


REFUSED = {
    "climbing out": ("../outside/secret.yaml", "is outside the spec's folder; it is not read"),
    "climbing to /etc/passwd": ("../../../../../../etc/passwd", "is not a .yaml file"),
    "absolute /etc/passwd": ("/etc/passwd", "is not a .yaml file"),
    "absolute spec outside": ("{tmp}/outside/base.yaml", "is an absolute path; it is not read"),
    "absolute spec inside": ("{tmp}/project/base.yaml", "is an absolute path; it is not read"),
    "symlink out of the tree": ("link.yaml", "is outside the spec's folder"),
    "symlink loop": ("loop.yaml", "cannot be resolved"),
    "NUL in the name": ('"a\\0.yaml"', "holds a control character"),
    "newline in the name": ('"a\\n.yaml"', "holds a control character"),
    "10,000 characters": ("a" * 9995 + ".yaml", "10,000 characters long; the limit is 1,024"),
    "a .env in the tree": (".env", "is not a .yaml file"),
    "a .env outside": ("../outside/.env", "is not a .yaml file"),
    "a non-spec .yaml in the tree": ("notes.yaml", "a spec is a mapping of keys"),
    "a FIFO": ("pipe.yaml", "is a device or pipe, not a spec file"),
    "a name too long for the system": ("a" * 300 + ".yaml", "File name too long"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_extends_outside_the_tree_or_of_a_non_spec_is_refused(cli, project, case) -> None:
    target, message = REFUSED[case]
    target = target.replace("{tmp}", str(project.parent))
    spec = project / "child.yaml"
    spec.write_text(f"extends: {target}\nname: Child\n")
    result = cli("shapes", spec)
    assert result.code == 1, result.err
    assert message in result.err, result.err
    assert SECRET not in result.err + result.out
    assert "internal error" not in result.err
    assert len(result.err.strip().splitlines()) <= 2, result.err


ACCEPTED = {
    "beside": ("base.yaml", "project"),
    "up within the tree": ("../base.yaml", "project/sub"),
    "down and up": ("sub/../base.yaml", "project"),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_extends_within_the_tree_works(cli, project: Path, case: str) -> None:
    target, folder = ACCEPTED[case]
    root = project.parent / folder
    if folder.endswith("sub"):
        # the root is the folder of the spec named on the command line
        top = project / "top.yaml"
        top.write_text("extends: sub/mid.yaml\n")
        (root / "mid.yaml").write_text(f"extends: {target}\nname: Mid\n")
        result = cli("shapes", top)
    else:
        (root / "child.yaml").write_text(f"extends: {target}\nname: Child\n")
        result = cli("shapes", root / "child.yaml")
    assert result.code == 0, result.err


def test_allow_extends_permits_a_folder(cli, project: Path) -> None:
    outside = project.parent / "outside"
    spec = project / "child.yaml"
    for target in (outside / "base.yaml", "../outside/base.yaml"):
        spec.write_text(f"extends: {target}\nname: Child\n")
        assert cli("shapes", spec).code == 1
        result = cli("--allow-extends", outside, "shapes", spec)
        assert result.code == 0, result.err
    spec.write_text(f"extends: {outside / 'secret.yaml'}\nname: Child\n")
    result = cli("--allow-extends", outside, "shapes", spec)
    assert result.code == 1 and SECRET not in result.err


def test_the_library_confines_too(project: Path) -> None:
    import archcompile
    from archcompile.errors import SpecError

    (project / "child.yaml").write_text("extends: ../outside/base.yaml\nname: Child\n")
    with pytest.raises(SpecError, match="outside the spec's folder"):
        archcompile.load_spec(project / "child.yaml")
    allowed = archcompile.load_spec(project / "child.yaml", allow_extends=[project.parent])
    assert allowed.name == "Child"
    with pytest.raises(SpecError, match="outside the spec's folder"):
        archcompile.load_spec_text("extends: ../outside/base.yaml\n", base_dir=project)
