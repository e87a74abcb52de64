"""A session-wide kubesim subprocess and real clients (official kubernetes client, kubectl)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from kubesim.control import KubesimControl
from kubesim.process import KubesimProcess, start_kubesim

# One region per concern, so that tests that break nodes or the API of one region cannot
# disturb tests running against another.
REGIONS: dict[str, Any] = {
    "defaults": {
        "job_duration": "300ms",
        "eviction_delay": "1s",
        "provisioning_delay": "500ms",
    },
    "regions": [
        {
            "name": "aws-us-east-1",
            "provider": "aws",
            "location": "us-east-1",
            "node_pools": [
                {"name": "general", "count": 3, "cpu": "8", "memory": "32Gi", "min": 1, "max": 8}
            ],
        },
        {
            "name": "azure-eastus",
            "provider": "azure",
            "location": "eastus",
            "node_pools": [{"name": "general", "count": 2, "cpu": "4", "memory": "16Gi"}],
        },
        {
            "name": "gcp-europe-west1",
            "provider": "gcp",
            "location": "europe-west1",
            "node_pools": [
                {"name": "general", "count": 2, "cpu": "2", "memory": "8Gi", "min": 1, "max": 6}
            ],
        },
        {
            "name": "alibaba-cn-hangzhou",
            "provider": "alibaba",
            "location": "cn-hangzhou",
            "unknown_key": "ignored",
            "node_pools": [{"name": "general", "count": 2, "cpu": "4", "memory": "16Gi"}],
        },
        {
            "name": "huawei-cn-north-4",
            "provider": "huawei",
            "location": "cn-north-4",
            "node_pools": [{"name": "general", "count": 2, "cpu": "4", "memory": "16Gi"}],
        },
    ],
    "network": [
        {"from": "aws-us-east-1", "to": "aws:us-east-1", "rtt_ms": 1.0, "loss": 0.0},
        {"from": "aws-us-east-1", "to": "azure:eastus", "rtt_ms": 4.0, "loss": 0.0},
    ],
}

CORE = "aws-us-east-1"  # CRUD, lists, watches, Jobs
FAULTS = "azure-eastus"  # outage, API errors, latency, dropped watches
NODES = "gcp-europe-west1"  # NotReady, pools, capacity, PDB eviction
KUBECTL = "alibaba-cn-hangzhou"
RESIDENT = "huawei-cn-north-4"


@pytest.fixture(scope="session")
def regions_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("regions") / "regions.yaml"
    path.write_text(yaml.safe_dump(REGIONS))
    return path


@pytest.fixture(scope="session")
def kubesim(
    regions_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubesimProcess]:  # noqa: E501
    process = start_kubesim(
        regions_file, tmp_path_factory.mktemp("kubesim"), extra_args=["--bookmark-interval", "0.5"]
    )
    yield process
    assert process.stop() == 0, process.log_path.read_text()


@pytest.fixture(scope="session")
def control(kubesim: KubesimProcess) -> Iterator[KubesimControl]:
    with KubesimControl(kubesim.control_url) as ctl:
        yield ctl


@pytest.fixture(scope="session")
def api_clients(kubesim: KubesimProcess) -> Iterator[Callable[[str], client.ApiClient]]:
    clients: dict[str, client.ApiClient] = {}

    def get(region: str) -> client.ApiClient:
        if region not in clients:
            clients[region] = config.new_client_from_config(
                config_file=kubesim.kubeconfig, context=region
            )
        return clients[region]

    yield get
    for api in clients.values():
        api.close()


@pytest.fixture(scope="session")
def core(api_clients: Callable[[str], client.ApiClient]) -> client.CoreV1Api:
    return client.CoreV1Api(api_clients(CORE))


@pytest.fixture(scope="session")
def batch(api_clients: Callable[[str], client.ApiClient]) -> client.BatchV1Api:
    return client.BatchV1Api(api_clients(CORE))


@pytest.fixture
def namespace(core: client.CoreV1Api) -> str:
    """A fresh namespace in the CORE region, so tests never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def job_body(
    name: str,
    duration: str = "200ms",
    exit_code: int = 0,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    requests: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    pod_annotations = {"kubesim.io/duration": duration, "kubesim.io/exit-code": str(exit_code)}
    pod_annotations.update(annotations or {})
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36"}
    if requests:
        container["resources"] = {"requests": requests}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "template": {
                "metadata": {"annotations": pod_annotations, "labels": labels or {}},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
            **spec,
        },
    }


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def condition(obj: Any, type_: str) -> Any:
    for cond in (obj.status.conditions or []) if obj.status else []:
        if cond.type == type_:
            return cond
    return None


def job_finished(batch: client.BatchV1Api, namespace: str, name: str) -> Callable[[], Any]:
    def check() -> Any:
        job = batch.read_namespaced_job(name, namespace)
        for type_ in ("Complete", "Failed"):
            cond = condition(job, type_)
            if cond is not None and cond.status == "True":
                return job
        return None

    return check
