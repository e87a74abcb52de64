"""`meridian deploy check`: every offline validation of infra/, one PASS/FAIL line each.

Nothing here reaches a cloud: `terraform validate` would need the provider binaries, so
Terraform is checked by `terraform fmt`, a python-hcl2 parse and checkov; manifests by
kustomize, kubernetes-validate (for the Kubernetes version the fleet pins) and checkov.
Tools come from PATH, else from `.venv-tools/bin` of the repository (or, in a git
worktree, of its main checkout). A missing tool is a failure that names it, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from meridian.deploy.fleet import Fleet, load_fleet
from meridian.deploy.render import FLEET_ROOT_FILES, REPO_ROOT, fleet_root, render

TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
IDC_DIR = REPO_ROOT / "infra" / "idc"
CHECKOV_CONFIG = REPO_ROOT / "infra" / "checkov.yaml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.temporal.yml"
COMPOSE_ENV_EXAMPLE = REPO_ROOT / "infra" / "temporal" / ".env.example"
TIMEOUT = 600


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}" + (
            f": {self.detail}" if self.detail else ""
        )


class ToolMissing(Exception):
    pass


def tool_dirs(repo: Path = REPO_ROOT) -> list[Path]:
    """Where the tools venv may be: this checkout's, and a worktree's main checkout's."""
    dirs = [repo / ".venv-tools" / "bin"]
    git = repo / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text().split(":", 1)[1].strip())
        common = gitdir / "commondir"
        main_git = (gitdir / common.read_text().strip()).resolve() if common.exists() else None
        if main_git is not None:
            dirs.append(main_git.parent / ".venv-tools" / "bin")
    return dirs


def find_tool(name: str) -> Path | None:
    found = shutil.which(name)
    if found:
        return Path(found)
    for directory in tool_dirs():
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        where = ", ".join(str(d) for d in tool_dirs())
        raise ToolMissing(f"{name} not found on PATH nor in {where}")
    return str(path)


def _run(args: Sequence[str], *, cwd: Path = REPO_ROOT) -> tuple[bool, str]:
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    output = (result.stdout + result.stderr).strip()
    return result.returncode == 0, output


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n  ".join(kept[-lines:])


# -- the checks -----------------------------------------------------------------------------


def check_terraform_fmt() -> CheckResult:
    ok, out = _run([_tool("terraform"), "fmt", "-check", "-recursive", str(TERRAFORM_DIR)])
    return CheckResult("terraform fmt", ok, "" if ok else "unformatted:\n  " + _tail(out))


def terraform_files() -> list[Path]:
    return sorted(p for p in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in p.parts)


def check_hcl_parse() -> CheckResult:
    try:
        import hcl2
    except ImportError:
        raise ToolMissing("python-hcl2 is not installed (pip install python-hcl2)") from None
    files = terraform_files()
    errors = []
    for path in files:
        try:
            with path.open() as handle:
                hcl2.load(handle)
        except Exception as exc:  # noqa: BLE001 - every parse error is reported
            errors.append(f"{path.relative_to(REPO_ROOT)}: {exc}".splitlines()[0])
    modules = sorted({p.parent.name for p in files if p.parent.parent.name == "modules"})
    detail = f"{len(files)} files, modules: {', '.join(modules) or 'none'}"
    return CheckResult("hcl parse", not errors, "\n  ".join(errors) or detail)


def check_fleet_root(fleet: Fleet, fleet_path: Path) -> CheckResult:
    """The committed root is what the fleet file renders to (nobody edited it by hand,
    nobody changed the fleet without rendering)."""
    stale = [
        name
        for name, text in fleet_root(fleet, fleet_path.name).items()
        if not (TERRAFORM_DIR / "fleet" / name).exists()
        or (TERRAFORM_DIR / "fleet" / name).read_text() != text
    ]
    detail = "render again: meridian deploy render --fleet-root infra/terraform/fleet"
    return CheckResult(
        "fleet root up to date",
        not stale,
        f"{', '.join(stale)} differ; {detail}" if stale else f"{', '.join(FLEET_ROOT_FILES)}",
    )


def build_overlays(rendered: Path) -> dict[str, Path]:
    """`kubectl kustomize` of every rendered overlay: overlay name => manifests file."""
    kubectl = _tool("kubectl")
    manifests = rendered / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for overlay in sorted((rendered / "k8s").iterdir()):
        if overlay.name in ("base", "regions") or not overlay.is_dir():
            continue
        ok, out = _run([kubectl, "kustomize", str(overlay)])
        if not ok:
            raise RuntimeError(f"kubectl kustomize {overlay.name}: {_tail(out, 5)}")
        target = manifests / f"{overlay.name}.yaml"
        target.write_text(out + "\n")
        built[overlay.name] = target
    return built


def _overlay_version(fleet: Fleet, overlay: str) -> str:
    name = overlay.removeprefix("unit-")
    region = next((r for r in fleet.regions if r.name == name), fleet.central)
    return fleet.version_of(region)


def check_kubernetes_validate(fleet: Fleet, built: dict[str, Path]) -> CheckResult:
    validate = _tool("kubernetes-validate")
    by_version: dict[str, list[str]] = {}
    for overlay, path in built.items():
        by_version.setdefault(_overlay_version(fleet, overlay), []).append(str(path))
    failures = []
    for version, paths in sorted(by_version.items()):
        ok, out = _run([validate, "--strict", "--quiet", "-k", f"{version}.0", *paths])
        if not ok:
            failures.append(f"{version}: {_tail(out)}")
    versions = ", ".join(sorted(by_version))
    detail = f"{len(built)} overlays against Kubernetes {versions}"
    return CheckResult("kubernetes-validate", not failures, "\n  ".join(failures) or detail)


def _checkov(name: str, directory: Path, framework: str) -> CheckResult:
    args = [_tool("checkov"), "-d", str(directory), "--framework", framework]
    args += ["--config-file", str(CHECKOV_CONFIG), "--compact", "--quiet", "--skip-download"]
    ok, out = _run(args)
    lines = [line for line in out.splitlines() if "Check:" in line or "FAILED" in line]
    return CheckResult(name, ok, "" if ok else "\n  ".join(lines[:30]) or _tail(out))


def check_idc() -> CheckResult | list[CheckResult]:
    if not IDC_DIR.exists():
        return CheckResult("idc (ansible)", True, "no infra/idc: nothing to check")
    playbooks = sorted(p for p in IDC_DIR.glob("*.y*ml") if _is_playbook(p))
    inventories = sorted([*IDC_DIR.glob("inventory*.y*ml"), *(IDC_DIR / "inventory").glob("*")])
    inventory = next((str(p) for p in inventories if "example" in p.name), "localhost,")
    results = []
    for playbook in playbooks:
        ok, out = _run(
            [_tool("ansible-playbook"), "--syntax-check", "-i", inventory, str(playbook)],
            cwd=IDC_DIR,
        )
        results.append(CheckResult(f"ansible syntax {playbook.name}", ok, "" if ok else _tail(out)))
    if not playbooks:
        results.append(CheckResult("ansible syntax", False, "no playbook in infra/idc"))
    ok, out = _run([_tool("ansible-lint"), "."], cwd=IDC_DIR)
    results.append(CheckResult("ansible-lint infra/idc", ok, "" if ok else _tail(out)))
    ok, out = _run([_tool("yamllint"), "-s", "."], cwd=IDC_DIR)
    results.append(CheckResult("yamllint infra/idc", ok, "" if ok else _tail(out)))
    return results


def _is_playbook(path: Path) -> bool:
    """A playbook is a YAML list of plays, each with `hosts` (or an import of one)."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return False
    return isinstance(document, list) and all(
        isinstance(play, dict) and ("hosts" in play or "import_playbook" in play)
        for play in document
    )


def compose_command() -> list[str]:
    """`docker compose` (the v2 plugin), else the standalone `docker-compose`."""
    docker = find_tool("docker")
    if docker is not None and _run([str(docker), "compose", "version"])[0]:
        return [str(docker), "compose"]
    standalone = find_tool("docker-compose")
    if standalone is not None:
        return [str(standalone)]
    raise ToolMissing("neither `docker compose` (plugin) nor docker-compose found")


def check_compose() -> CheckResult:
    command = compose_command()
    # The compose file has no default password: the example env file stands in for the
    # operator's `infra/temporal/.env`.
    env_file = str(COMPOSE_ENV_EXAMPLE)
    ok, out = _run([*command, "--env-file", env_file, "-f", str(COMPOSE_FILE), "config", "--quiet"])
    if not ok and command[-1] != "compose":
        # docker-compose 1.x predates the Compose specification (top-level `name:` ...).
        out += "\n(this is docker-compose 1.x; the check needs the `docker compose` v2 plugin)"
    return CheckResult("docker compose config", ok, "" if ok else _tail(out))


# -- running --------------------------------------------------------------------------------


def _guarded(name: str, fn: Callable[[], CheckResult | list[CheckResult]]) -> list[CheckResult]:
    try:
        result = fn()
    except ToolMissing as exc:
        return [CheckResult(name, False, str(exc))]
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        return [CheckResult(name, False, str(exc))]
    return result if isinstance(result, list) else [result]


def collect(
    fleet_path: Path, rendered: Path, only: Sequence[str] | None = None
) -> list[CheckResult]:
    fleet, _ = load_fleet(fleet_path)
    wanted = set(only or [])

    def want(key: str) -> bool:
        return not wanted or key in wanted

    results: list[CheckResult] = []
    if want("terraform"):
        results += _guarded("terraform fmt", check_terraform_fmt)
        results += _guarded("hcl parse", check_hcl_parse)
        results += _guarded("fleet root up to date", lambda: check_fleet_root(fleet, fleet_path))
        results += _guarded(
            "checkov terraform", lambda: _checkov("checkov terraform", TERRAFORM_DIR, "terraform")
        )
    if want("kubernetes"):
        if rendered.exists():
            shutil.rmtree(rendered)
        render(fleet_path, rendered)
        built: dict[str, Path] = {}

        def kustomize() -> CheckResult:
            built.update(build_overlays(rendered))
            return CheckResult("kubectl kustomize", True, f"{len(built)} overlays")

        results += _guarded("kubectl kustomize", kustomize)
        if built:
            results += _guarded(
                "kubernetes-validate", lambda: check_kubernetes_validate(fleet, built)
            )
            results += _guarded(
                "checkov kubernetes",
                lambda: _checkov("checkov kubernetes", rendered / "manifests", "kubernetes"),
            )
    if want("idc"):
        results += _guarded("idc (ansible)", check_idc)
    if want("compose"):
        results += _guarded("docker compose config", check_compose)
    return results


def run_checks(fleet_path: Path, rendered: Path, only: Sequence[str] | None = None) -> bool:
    results = collect(fleet_path, rendered, only)
    for result in results:
        print(result.line(), flush=True)  # noqa: T201 - the command's report
    failed = [r.name for r in results if not r.ok]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")  # noqa: T201
    return not failed
