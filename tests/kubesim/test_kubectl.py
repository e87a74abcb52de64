"""kubectl (the real binary) against every region."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from kubesim.process import KubesimProcess

from .conftest import KUBECTL

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


@pytest.fixture
def kubectl(kubesim: KubesimProcess, tmp_path: Path):  # type: ignore[no-untyped-def]
    def run(*args: str, context: str = KUBECTL, check: bool = True) -> str:
        result = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                kubesim.kubeconfig,
                "--context",
                context,
                "--cache-dir",
                str(tmp_path / "cache"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={"HOME": str(tmp_path), "PATH": "/usr/local/bin:/usr/bin:/bin"},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout + result.stderr

    return run


def test_get_nodes_in_every_region(kubectl, kubesim: KubesimProcess) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
    for region in kubesim.regions:
        out = kubectl("get", "nodes", context=region)
        assert "STATUS" in out and f"{region}-" in out and "Ready" in out


def test_create_wait_logs_delete(kubectl) -> None:  # type: ignore[no-untyped-def]
    name = f"kc-{uuid.uuid4().hex[:6]}"
    assert f"job.batch/{name} created" in kubectl(
        "create", "job", name, "--image=busybox:1.36", "--", "echo", "hello"
    )
    listing = kubectl("get", "jobs,pods")
    assert name in listing and "COMPLETIONS" in listing
    assert "condition met" in kubectl(
        "wait", "--for=condition=complete", f"job/{name}", "--timeout=30s"
    )
    out = kubectl("get", "job", name)
    assert "Complete" in out and "1/1" in out
    logs = kubectl("logs", f"job/{name}")
    assert "command: echo hello" in logs and "exited with code 0" in logs
    assert f'job.batch "{name}" deleted' in kubectl("delete", "job", name)
    assert name not in kubectl("get", "jobs,pods")


def test_cordon_and_uncordon(kubectl, kubesim: KubesimProcess) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
    node = f"{KUBECTL}-general-0"
    kubectl("cordon", node)
    assert "SchedulingDisabled" in kubectl("get", "node", node)
    kubectl("uncordon", node)
    assert "SchedulingDisabled" not in kubectl("get", "node", node)


def test_not_found_error_reads_like_a_real_cluster(kubectl) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
    out = kubectl("get", "job", "does-not-exist", check=False)
    assert 'Error from server (NotFound): jobs.batch "does-not-exist" not found' in out
