"""`meridian deploy kubeconfig`: one context per region, named after it, exec credentials."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import config

from meridian.app.cli import main
from meridian.deploy.kubeconfig import write_kubeconfig

from .support import DATA, FLEET, tool


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    out = tmp_path / "kubeconfig"
    main(["deploy", "kubeconfig", "--terraform-output", str(DATA / "outputs.json"),
          "--out", str(out), "--fleet", str(FLEET)])  # fmt: skip
    return out


def test_one_context_per_region_named_after_it(kubeconfig: Path) -> None:
    contexts, _ = config.list_kube_config_contexts(config_file=str(kubeconfig))
    names = [c["name"] for c in contexts]
    assert names == [
        "alibaba-cn-hangzhou",
        "aws-us-west-2",
        "azure-eastus",
        "gcp-us-central1",
        "tencent-ap-guangzhou",
    ]
    assert all(c["context"] == {"cluster": c["name"], "user": c["name"]} for c in contexts)
    data = yaml.safe_load(kubeconfig.read_text())
    west = next(c["cluster"] for c in data["clusters"] if c["name"] == "aws-us-west-2")
    assert west == {
        "server": "https://ABCDEF.gr7.us-west-2.eks.amazonaws.com",
        "certificate-authority-data": "QVdTLUNB",
    }
    # Credentials are fetched at use, never stored: the file is still private.
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600


def test_each_cloud_gets_its_own_exec_credential(kubeconfig: Path) -> None:
    users = {u["name"]: u["user"] for u in yaml.safe_load(kubeconfig.read_text())["users"]}
    aws = users["aws-us-west-2"]["exec"]
    assert aws["command"] == "aws"
    assert aws["args"] == ["eks", "get-token", "--cluster-name", "aws-us-west-2",
                           "--region", "us-west-2", "--output", "json"]  # fmt: skip
    assert users["azure-eastus"]["exec"]["command"] == "kubelogin"
    gke = users["gcp-us-central1"]["exec"]
    assert gke["command"] == "gke-gcloud-auth-plugin" and gke["provideClusterInfo"] is True
    ack = users["alibaba-cn-hangzhou"]["exec"]
    assert ack["command"] == "ack-ram-tool" and "c8f0e1a2b3c4d5e6f" in ack["args"]
    assert users["tencent-ap-guangzhou"] == {}  # no exec plugin: the runbook says what to add
    for user in users.values():
        if user:
            assert user["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"


def test_kubectl_reads_it(kubeconfig: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [tool("kubectl"), "--kubeconfig", str(kubeconfig), "config", "get-contexts", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "PATH": "/usr/local/bin:/usr/bin:/bin"},
        check=True,
    )
    assert result.stdout.split() == sorted(result.stdout.split())
    assert "baidu-bj" not in result.stdout and "aws-us-west-2" in result.stdout


def test_a_region_unknown_to_the_fleet_is_refused(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        '{"regions": {"value": {"aws-mars-1": {"cluster_endpoint": "https://x",'
        ' "cluster_ca_certificate": "Q0E="}}, "type": "map", "sensitive": true}}'
    )
    with pytest.raises(ValueError, match="aws-mars-1"):
        write_kubeconfig(outputs, tmp_path / "kubeconfig", fleet=FLEET)
