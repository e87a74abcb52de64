"""kubesim's serverless capacity: one virtual node per declared capacity.

Burst pods are built the way the engine builds them (meridian.kube.jobs with a BurstPlan),
so these tests also check that Meridian's steering lands where the simulated cloud sends
pods, and only there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from kubesim.control import KubesimControl, KubesimControlError
from kubesim.process import KubesimProcess, start_kubesim
from kubesim.util import parse_iso
from meridian.kube.jobs import build_job
from meridian.serverless.cost import cost_for
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.plan import BurstPlan, plan_burst
from meridian.tasks.spec import TaskSpec

from .conftest import condition, wait_for

ECI = "alibaba-cn-hangzhou"  # ECI through the virtual node's selector and toleration
ECI_LABEL = "alibaba-cn-shanghai"  # ECI through the pod label; a tiny quota
FARGATE = "aws-us-east-1"
NONE = "gcp-europe-west1"  # no serverless capacity
COLD_START = 1.5
ECI_SERVERLESS = {"kind": "eci", "eci_steering": "virtual-node", "cold_start_seconds": COLD_START}
ECI_LABEL_SERVERLESS = {"kind": "eci", "max_pods": 2, "cold_start_seconds": 0.2}
FARGATE_SERVERLESS = {"kind": "fargate", "namespaces": ["meridian"], "cold_start_seconds": 0.2}

REGIONS: dict[str, Any] = {
    "defaults": {"job_duration": "300ms", "eviction_delay": "1s", "provisioning_delay": "1s"},
    "regions": [
        {
            "name": ECI,
            "provider": "alibaba",
            "location": "cn-hangzhou",
            # One small node: a pod asking for more never fits on a node.
            "node_pools": [{"name": "general", "count": 1, "cpu": "2", "memory": "4Gi"}],
            "serverless": ECI_SERVERLESS,
        },
        {
            "name": ECI_LABEL,
            "provider": "alibaba",
            "location": "cn-shanghai",
            "node_pools": [{"name": "general", "count": 1, "cpu": "2", "memory": "4Gi"}],
            "serverless": ECI_LABEL_SERVERLESS,
        },
        {
            "name": FARGATE,
            "provider": "aws",
            "location": "us-east-1",
            "node_pools": [{"name": "general", "count": 1, "cpu": "2", "memory": "4Gi"}],
            "serverless": FARGATE_SERVERLESS,
        },
        {
            "name": NONE,
            "provider": "gcp",
            "location": "europe-west1",
            "node_pools": [{"name": "general", "count": 1, "cpu": "2", "memory": "4Gi"}],
        },
    ],
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimProcess]:
    path = tmp_path_factory.mktemp("serverless") / "regions.yaml"
    path.write_text(yaml.safe_dump(REGIONS))
    process = start_kubesim(path, tmp_path_factory.mktemp("kubesim-serverless"))
    yield process
    assert process.stop() == 0, process.log_path.read_text()


@pytest.fixture(scope="module")
def ctl(sim: KubesimProcess) -> Iterator[KubesimControl]:
    with KubesimControl(sim.control_url) as control:
        yield control


@pytest.fixture(scope="module")
def apis(sim: KubesimProcess) -> Iterator[Callable[[str], client.ApiClient]]:
    clients: dict[str, client.ApiClient] = {}

    def get(region: str) -> client.ApiClient:
        if region not in clients:
            clients[region] = config.new_client_from_config(
                config_file=str(sim.kubeconfig), context=region
            )
        return clients[region]

    yield get
    for api in clients.values():
        api.close()


def _spec(cpu: str, memory: str, duration: str) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "burst",
            "business_unit": "bu",
            "data_source": {"provider": "alibaba", "region": "cn-hangzhou"},
            "job": {
                "image": "busybox",
                "resources": {"cpu": cpu, "memory": memory},
                "annotations": {"kubesim.io/duration": duration},
            },
        }
    )


def _plan(serverless: dict[str, Any], spec: TaskSpec) -> BurstPlan:
    capacity = ServerlessConfig.model_validate(serverless)
    resources = spec.job.resources
    return plan_burst(capacity, resources.cpu_millis, resources.memory_bytes)


def _run(
    api: client.ApiClient,
    spec: TaskSpec,
    burst: BurstPlan | None,
    namespace: str = "meridian",
) -> str:
    task_id = f"t-{uuid.uuid4().hex[:10]}"
    job = build_job(task_id, spec, 1, namespace, burst=burst)
    client.BatchV1Api(api).create_namespaced_job(namespace, job)
    return task_id


def _pod(api: client.ApiClient, task_id: str, namespace: str = "meridian") -> Any:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"meridian.io/task-id={task_id}"
    )
    return pods.items[0] if pods.items else None


def _phase(api: client.ApiClient, task_id: str, phase: str) -> Callable[[], Any]:
    def check() -> Any:
        pod = _pod(api, task_id)
        return pod if pod is not None and pod.status.phase == phase else None

    return check


def _unschedulable(api: client.ApiClient, task_id: str, namespace: str = "meridian") -> Any:
    def check() -> Any:
        pod = _pod(api, task_id, namespace)
        cond = condition(pod, "PodScheduled") if pod is not None else None
        return pod if cond is not None and cond.reason == "Unschedulable" else None

    return check


def test_a_virtual_node_stands_for_the_declared_capacity(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    nodes = client.CoreV1Api(apis(ECI)).list_node().items
    virtual = [n for n in nodes if (n.metadata.labels or {}).get("type") == "virtual-kubelet"]
    assert len(virtual) == 1
    node = virtual[0]
    assert node.spec.taints[0].to_dict() == {
        "key": "virtual-kubelet.io/provider",
        "value": "alibabacloud",
        "effect": "NoSchedule",
        "time_added": None,
    }
    # No machine behind it: the declared limits (the kind's defaults here) are its room.
    defaults = ServerlessConfig.model_validate(ECI_SERVERLESS)
    assert node.status.allocatable["pods"] == str(defaults.max_pods)
    assert node.status.allocatable["cpu"] == defaults.max_cpu
    report = ctl.serverless(ECI)
    assert (report["kind"], report["node"], report["ready"]) == ("eci", node.metadata.name, True)
    assert NONE not in ctl.serverless()
    with pytest.raises(KubesimControlError) as err:
        ctl.serverless(NONE)
    assert err.value.status == 404


def test_a_steered_pod_runs_on_the_virtual_node_after_the_cold_start(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    api = apis(ECI)
    # Larger than the region's only node: only the serverless capacity can hold it.
    spec = _spec("3", "5Gi", "500ms")
    plan = _plan(ECI_SERVERLESS, spec)
    task_id = _run(api, spec, plan)
    pod = wait_for(_phase(api, task_id, "Running"), what="the burst pod running")
    assert pod.spec.node_name == ctl.serverless(ECI)["node"]
    scheduled = parse_iso(condition(pod, "PodScheduled").last_transition_time.isoformat())
    started = pod.status.start_time.timestamp()
    # Second-precision timestamps: the gap is at least the cold start less one second.
    assert started - scheduled >= COLD_START - 1.0
    assert pod.metadata.annotations["meridian.io/billed-cpu"] == "4"
    assert pod.spec.containers[0].resources.requests == {"cpu": "4", "memory": "8Gi"}
    wait_for(_phase(api, task_id, "Succeeded"), what="the burst pod done")


def test_a_pod_not_steered_never_lands_on_the_virtual_node(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    api = apis(ECI)
    task_id = _run(api, _spec("3", "5Gi", "300ms"), None)
    pod = wait_for(_unschedulable(api, task_id), what="an unschedulable pod")
    assert pod.spec.node_name is None
    message = condition(pod, "PodScheduled").message
    assert "untolerated taint {virtual-kubelet.io/provider: alibabacloud}" in message
    # A small one runs, on the node.
    small = _run(api, _spec("500m", "256Mi", "300ms"), None)
    running = wait_for(_phase(api, small, "Running"), what="the small pod running")
    assert running.spec.node_name != ctl.serverless(ECI)["node"]
    assert _pod(api, task_id).spec.node_name is None


def test_fargate_runs_only_profile_pods_in_the_profile_namespaces(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    api = apis(FARGATE)
    spec = _spec("3", "5Gi", "300ms")
    plan = _plan(FARGATE_SERVERLESS, spec)
    task_id = _run(api, spec, plan)
    pod = wait_for(_phase(api, task_id, "Running"), what="the Fargate pod running")
    assert pod.spec.node_name == ctl.serverless(FARGATE)["node"]
    # The same labels in a namespace the profile does not select: no Fargate.
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "elsewhere"}})
    other = plan.model_copy(
        update={"steering": plan.steering.model_copy(update={"namespaces": []})}
    )
    stray = _run(api, spec, other, namespace="elsewhere")
    pod = wait_for(_unschedulable(api, stray, "elsewhere"), what="the stray pod unschedulable")
    assert pod.spec.node_name is None


def test_quota_exhaustion_leaves_steered_pods_pending_until_it_frees(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    api = apis(ECI)
    ctl.exhaust_serverless(ECI)
    try:
        spec = _spec("1", "1Gi", "300ms")
        task_id = _run(api, spec, _plan(ECI_SERVERLESS, spec))
        pod = wait_for(_unschedulable(api, task_id), what="the burst pod unschedulable")
        assert "no serverless quota left" in condition(pod, "PodScheduled").message
        assert ctl.serverless(ECI)["exhausted"] is True
    finally:
        ctl.exhaust_serverless(ECI, exhausted=False)
    wait_for(_phase(api, task_id, "Succeeded"), what="the burst pod run once quota frees")


def test_the_declared_max_pods_is_a_quota(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    api = apis(ECI_LABEL)
    spec = _spec("3", "5Gi", "30s")
    plan = _plan(ECI_LABEL_SERVERLESS, spec)
    assert plan.steering.labels["alibabacloud.com/eci"] == "true"
    first, second = _run(api, spec, plan), _run(api, spec, plan)
    for task_id in (first, second):
        wait_for(_phase(api, task_id, "Running"), what="a burst pod within the quota")
    third = _run(api, spec, plan)
    pod = wait_for(_unschedulable(api, third), what="the pod past the quota")
    assert "Too many pods" in condition(pod, "PodScheduled").message
    assert ctl.serverless(ECI_LABEL)["used"]["pods"] == 2
    batch = client.BatchV1Api(api)
    for task_id in (first, second, third):
        batch.delete_namespaced_job(f"{task_id}-a1", "meridian", propagation_policy="Background")


def test_a_not_ready_virtual_node_fails_its_pods_like_a_lost_node(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    api = apis(FARGATE)
    spec = _spec("1", "1Gi", "60s")
    task_id = _run(api, spec, _plan(FARGATE_SERVERLESS, spec))
    wait_for(_phase(api, task_id, "Running"), what="the burst pod running")
    try:
        assert ctl.set_serverless_ready(FARGATE, False)["ready"] is False
        pod = wait_for(_phase(api, task_id, "Failed"), what="the burst pod lost")
        assert pod.status.reason == "NodeLost"
    finally:
        ctl.set_serverless_ready(FARGATE, True)


def test_cost_accrues_for_the_billed_size_while_pods_run(
    apis: Callable[[str], client.ApiClient], ctl: KubesimControl
) -> None:
    api = apis(ECI)
    before = ctl.serverless(ECI)
    spec = _spec("2", "3Gi", "1s")
    plan = _plan(ECI_SERVERLESS, spec)
    task_id = _run(api, spec, plan)
    wait_for(_phase(api, task_id, "Succeeded"), what="the burst pod done")
    after = ctl.serverless(ECI)
    assert after["pods_billed"] == before["pods_billed"] + 1
    assert after["currency"] == "CNY"
    # At least the billed size (2 vCPU, 4 GiB) for the cold start and the run.
    least = cost_for(ServerlessConfig.model_validate(ECI_SERVERLESS), plan.billed, COLD_START)
    assert after["cost"] - before["cost"] >= least
    # Nothing runs there any more: the cost stands still.
    assert ctl.serverless(ECI)["cost"] == after["cost"]


def test_an_invalid_serverless_block_stops_kubesim_with_the_field(tmp_path: Path) -> None:
    bad = {
        "regions": [
            {
                "name": ECI,
                "provider": "alibaba",
                "location": "cn-hangzhou",
                "serverless": {"kind": "eci", "max_pods": 0},
            }
        ]
    }
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(Exception) as err:
        start_kubesim(path, tmp_path / "state", timeout=15)
    assert "max_pods" in str(err.value) or "max_pods" in _log_of(tmp_path / "state")


def _log_of(state_dir: Path) -> str:
    return "\n".join(p.read_text() for p in state_dir.glob("*.log")) if state_dir.exists() else ""
