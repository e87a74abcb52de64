"""The unit worker in a pod: in-cluster credentials when there is no kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.config import incluster_config

from meridian.kube.clients import ClusterClients


@pytest.fixture
def in_a_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment and files the kubelet gives a pod with a ServiceAccount token."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")


def test_no_kubeconfig_in_a_pod_uses_the_pods_service_account(
    in_a_pod: None, tmp_path: Path
) -> None:
    clients = ClusterClients(tmp_path / "absent-kubeconfig")
    api = clients.api_client("aws-us-west-2")
    assert api.configuration.host == "https://10.96.0.1:443"
    assert api.configuration.api_key["BearerToken"] == "bearer pod-token"
    # Bound tokens expire: the client rereads the projected file.
    assert api.configuration.refresh_api_key_hook is not None
    assert api.configuration.retries is False  # our retry policy, not urllib3's
    clients.close()


def test_in_cluster_credentials_serve_one_region_only(in_a_pod: None, tmp_path: Path) -> None:
    # The pod's token reaches the pod's own cluster: a second region through it would
    # silently act on the wrong cluster.
    clients = ClusterClients(tmp_path / "absent-kubeconfig")
    clients.api_client("aws-us-west-2")
    with pytest.raises(ValueError, match="in-cluster credentials reach one region"):
        clients.api_client("aws-us-east-1")
    clients.close()


def test_no_kubeconfig_outside_a_pod_says_which_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    clients = ClusterClients(tmp_path / "absent-kubeconfig")
    with pytest.raises(FileNotFoundError, match="absent-kubeconfig.*not in a pod"):
        clients.api_client("aws-us-west-2")
