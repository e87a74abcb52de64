"""`meridian deploy check`: PASS/FAIL per validation, exit 1 on any failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meridian.deploy import check
from meridian.deploy.check import collect, run_checks

from .support import FLEET, tool


def test_the_shipped_infra_passes_the_terraform_and_kubernetes_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("terraform", "kubectl", "kubernetes-validate", "checkov"):
        tool(name)
    assert run_checks(FLEET, tmp_path / "rendered", only=["terraform", "kubernetes"])
    lines = capsys.readouterr().out.splitlines()
    for name in ("terraform fmt", "hcl parse", "fleet root up to date", "checkov terraform",
                 "kubectl kustomize", "kubernetes-validate", "checkov kubernetes"):  # fmt: skip
        assert any(line.startswith(f"PASS {name}") for line in lines), lines


def test_unformatted_terraform_fails_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool("terraform")
    (tmp_path / "main.tf").write_text('variable "x" {\ntype=string\n}\n')
    monkeypatch.setattr(check, "TERRAFORM_DIR", tmp_path)
    result = check.check_terraform_fmt()
    assert not result.ok and "main.tf" in result.detail


def test_a_missing_tool_is_a_clear_failure_not_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setattr(check, "tool_dirs", lambda repo=None: [tmp_path])
    results = collect(FLEET, tmp_path / "rendered", only=["terraform"])
    fmt = next(r for r in results if r.name == "terraform fmt")
    assert not fmt.ok and "terraform not found on PATH" in fmt.detail
    assert fmt.line().startswith("FAIL terraform fmt: terraform not found")


def test_a_hand_edited_fleet_root_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "terraform"
    shutil.copytree(check.TERRAFORM_DIR / "fleet", root / "fleet")
    monkeypatch.setattr(check, "TERRAFORM_DIR", root)
    fleet, _ = check.load_fleet(FLEET)
    assert check.check_fleet_root(fleet, FLEET).ok
    main_tf = root / "fleet" / "main.tf"
    main_tf.write_text(main_tf.read_text().replace("max_size = 20", "max_size = 40", 1))
    stale = check.check_fleet_root(fleet, FLEET)
    assert not stale.ok and "main.tf" in stale.detail


def test_tools_are_found_in_the_main_checkouts_tools_venv() -> None:
    # In a git worktree the tools venv lives in the main checkout.
    dirs = check.tool_dirs()
    assert dirs[0] == check.REPO_ROOT / ".venv-tools" / "bin"
    if (check.REPO_ROOT / ".git").is_file():
        assert len(dirs) == 2 and dirs[1].parts[-2:] == (".venv-tools", "bin")


def test_render_then_check_passes_on_the_fleet_file_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's bar: `meridian deploy render` then `meridian deploy check`, all green."""
    from meridian.app.cli import main as cli_main

    for name in ("terraform", "kubectl", "checkov", "ansible-lint", "yamllint"):
        tool(name)
    out = tmp_path / "deploy"
    cli_main(["deploy", "render", "--fleet", str(FLEET), "--out", str(out)])
    with pytest.raises(SystemExit) as exited:
        cli_main(["deploy", "check", "--fleet", str(FLEET), "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert exited.value.code in (0, None), "\n".join(lines)
    assert not [line for line in lines if line.startswith("FAIL")]
    assert sum(line.startswith("PASS") for line in lines) >= 10
