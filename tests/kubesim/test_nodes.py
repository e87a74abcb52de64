"""Nodes: status for load/health, NotReady eviction (NodeLost), pools, capacity, cordon."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubesim.control import KubesimControl

from .conftest import NODES, condition, job_body, job_finished, wait_for


@pytest.fixture
def node_api(
    api_clients: Any, control: KubesimControl
) -> Iterator[tuple[client.CoreV1Api, client.BatchV1Api, str]]:  # noqa: E501
    api = api_clients(NODES)
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    namespace = f"n-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    yield core, batch, namespace
    core.delete_namespace(namespace)
    # Put the region back: two Ready, schedulable nodes.
    for node in core.list_node().items:
        control.set_node_ready(NODES, node.metadata.name, True)
        if node.spec.unschedulable:
            core.patch_node(node.metadata.name, {"spec": {"unschedulable": None}})
    control.scale_pool(NODES, "general", 2, provisioning_delay_seconds=0)


def _ready(node: client.V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_node_status_reports_capacity_conditions_and_info(node_api: Any) -> None:
    core, _, _ = node_api
    node = core.list_node().items[0]
    assert node.status.capacity["cpu"] == "2" and node.status.allocatable["memory"] == "8Gi"
    assert node.status.allocatable["pods"] == "110"
    types = {c.type: c.status for c in node.status.conditions}
    assert types == {
        "Ready": "True",
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
    }
    assert node.status.node_info.kubelet_version.startswith("v1.")
    assert node.metadata.labels["kubesim.io/pool"] == "general"
    assert node.metadata.labels["topology.kubernetes.io/region"] == NODES


def test_not_ready_node_fails_pods_with_node_lost_and_job_retries(
    node_api: Any, control: KubesimControl
) -> None:
    core, batch, namespace = node_api
    batch.create_namespaced_job(namespace, job_body("lost", duration="3s", backoffLimit=2))
    [pod] = wait_for(
        lambda: [
            p for p in core.list_namespaced_pod(namespace).items if p.status.phase == "Running"
        ]
    )
    node = pod.spec.node_name
    control.set_node_ready(NODES, node, False)
    got = core.read_node(node)
    assert condition(got, "Ready").status == "False"
    assert any(t.key == "node.kubernetes.io/not-ready" for t in got.spec.taints)
    # eviction_delay is 1s in the test regions file.
    lost = wait_for(
        lambda: (
            (p := core.read_namespaced_pod(pod.metadata.name, namespace)).status.phase == "Failed"
            and p
        ),
        timeout=4,
    )
    assert lost.status.reason == "NodeLost"
    job = wait_for(job_finished(batch, namespace, "lost"), timeout=10)
    assert condition(job, "Complete").status == "True"
    assert job.status.failed == 1 and job.status.succeeded == 1
    replacement = [
        p for p in core.list_namespaced_pod(namespace).items if p.metadata.name != pod.metadata.name
    ]
    assert replacement[0].spec.node_name != node


def test_node_back_ready_before_eviction_delay_keeps_pods(
    node_api: Any, control: KubesimControl
) -> None:
    core, batch, namespace = node_api
    batch.create_namespaced_job(namespace, job_body("blip", duration="2s"))
    [pod] = wait_for(
        lambda: [
            p for p in core.list_namespaced_pod(namespace).items if p.status.phase == "Running"
        ]
    )
    control.set_node_ready(NODES, pod.spec.node_name, False)
    time.sleep(0.3)
    control.set_node_ready(NODES, pod.spec.node_name, True)
    job = wait_for(job_finished(batch, namespace, "blip"), timeout=6)
    assert condition(job, "Complete") and not job.status.failed


def test_unschedulable_pods_wait_for_capacity(node_api: Any) -> None:
    core, batch, namespace = node_api
    # Nodes have 2 CPUs: a 1.5-CPU pod fits once per node, never twice.
    for i in range(3):
        batch.create_namespaced_job(
            namespace, job_body(f"big-{i}", duration="60s", requests={"cpu": "1500m"})
        )

    def pending() -> list[client.V1Pod]:
        return [
            p
            for p in core.list_namespaced_pod(namespace).items
            if p.status.phase == "Pending"
            and condition(p, "PodScheduled")
            and condition(p, "PodScheduled").status == "False"
        ]

    [stuck] = wait_for(pending, what="one Unschedulable pod")
    scheduled = condition(stuck, "PodScheduled")
    assert scheduled.reason == "Unschedulable"
    assert scheduled.message.startswith("0/2 nodes are available: 2 Insufficient cpu.")
    assert stuck.spec.node_name is None
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={stuck.metadata.name}"
    )
    assert "FailedScheduling" in {e.reason for e in events.items}
    # Freeing capacity lets the scheduler retry.
    running = [p for p in core.list_namespaced_pod(namespace).items if p.spec.node_name]
    batch.delete_namespaced_job(
        running[0].metadata.labels["job-name"], namespace, propagation_policy="Background"
    )
    wait_for(
        lambda: core.read_namespaced_pod(stuck.metadata.name, namespace).spec.node_name,
        what="the pending pod to be bound",
    )


def test_cordoned_and_not_ready_nodes_take_no_new_pods(
    node_api: Any, control: KubesimControl
) -> None:
    core, batch, namespace = node_api
    first, second = (n.metadata.name for n in core.list_node().items)
    core.patch_node(first, {"spec": {"unschedulable": True}})
    control.set_node_ready(NODES, second, False)
    batch.create_namespaced_job(namespace, job_body("nowhere", duration="100ms"))
    [pod] = wait_for(lambda: core.list_namespaced_pod(namespace).items)
    scheduled = wait_for(
        lambda: condition(
            core.read_namespaced_pod(pod.metadata.name, namespace),  # noqa: E501
            "PodScheduled",
        )
    )
    assert scheduled.status == "False" and "unschedulable" in scheduled.message
    core.patch_node(first, {"spec": {"unschedulable": False}})
    bound = wait_for(lambda: core.read_namespaced_pod(pod.metadata.name, namespace).spec.node_name)  # noqa: E501
    assert bound == first


def test_pool_scale_up_and_down(node_api: Any, control: KubesimControl) -> None:
    core, _, _ = node_api
    [pool] = control.pools(NODES)
    assert (pool["name"], pool["desired"], pool["current"], pool["min"], pool["max"]) == (
        "general",
        2,
        2,
        1,
        6,
    )
    grown = control.scale_pool(NODES, "general", 4, provisioning_delay_seconds=0.5)
    assert grown["desired"] == 4 and grown["current"] == 4 and grown["ready"] == 2
    new = [n for n in grown["nodes"] if n not in pool["nodes"]]
    assert new == [f"{NODES}-general-{i}" for i in (2, 3)] or len(new) == 2
    for name in new:
        node = core.read_node(name)
        assert not any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    wait_for(lambda: control.pools(NODES)[0]["ready"] == 4, timeout=3)
    shrunk = control.scale_pool(NODES, "general", 1)
    assert shrunk["current"] == 1 and len(core.list_node().items) == 1


def test_delete_node_fails_its_pods_and_lowers_desired(
    node_api: Any, control: KubesimControl
) -> None:
    core, batch, namespace = node_api
    batch.create_namespaced_job(namespace, job_body("victim", duration="60s", backoffLimit=0))
    [pod] = wait_for(
        lambda: [
            p for p in core.list_namespaced_pod(namespace).items if p.status.phase == "Running"
        ]
    )
    result = control.delete_node(NODES, pod.spec.node_name)
    assert result["pool"]["desired"] == 1
    with pytest.raises(ApiException):
        core.read_node(pod.spec.node_name)
    lost = wait_for(
        lambda: (
            (p := core.read_namespaced_pod(pod.metadata.name, namespace)).status.phase == "Failed"
            and p
        )
    )
    assert lost.status.reason == "NodeLost"
    job = wait_for(job_finished(batch, namespace, "victim"))
    assert condition(job, "Failed").reason == "BackoffLimitExceeded"
