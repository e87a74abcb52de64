"""Shared by the deploy tests: the shipped fleet, tools, rendering into a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from meridian.deploy.check import find_tool
from tests.conftest import REPO

FLEET = REPO / "infra" / "regions" / "fleet-15.yaml"
DATA = Path(__file__).resolve().parent / "data"


def tool(name: str) -> str:
    """A tool the test needs. CI installs them all: skip, clearly, only where one is missing."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed (PATH or .venv-tools/bin)")
    return str(path)


def kustomize(directory: Path) -> str:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
    return result.stdout


def _unquote(value: object) -> object:
    # python-hcl2 8 keeps string literals' quotes (and label quotes) as written.
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        # ... and marks blocks with `__is_block__`.
        return {str(_unquote(k)): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def hcl(path: Path) -> dict[str, Any]:
    """A Terraform file parsed by python-hcl2, string literals without their quotes."""
    import hcl2

    with path.open() as handle:
        parsed = _unquote(hcl2.load(handle))
    assert isinstance(parsed, dict)
    return parsed
