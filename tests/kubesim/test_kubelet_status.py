"""The pod status the kubelet writes at each step: running, restarted, exited, lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubesim.cluster import Cluster
from kubesim.config import parse_config
from kubesim.resources import PODS
from kubesim.server import Simulator
from kubesim.types import Obj
from kubesim.util import new_uid, now_iso

REGION = "aws-us-east-1"
CONFIG: dict[str, Any] = {
    "regions": [{"name": REGION, "node_pools": [{"name": "general", "count": 1}]}],
}


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    sim = Simulator(parse_config(CONFIG), base_port=18300)
    cluster = sim.clusters[REGION]
    cluster.bootstrap()
    yield cluster
    await cluster.close()


def create_pod(
    cluster: Cluster, name: str, exit_code: int, policy: str, node: str | None = None
) -> None:
    spec: Obj = {
        "restartPolicy": policy,
        "containers": [{"name": "main", "image": "busybox:1.36"}],
    }
    if node:
        spec["nodeName"] = node
    pod: Obj = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": new_uid(),
            "creationTimestamp": now_iso(),
            "annotations": {"kubesim.io/duration": "200ms", "kubesim.io/exit-code": str(exit_code)},
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    }
    cluster.store.create(PODS.name, pod)


def status(cluster: Cluster, name: str) -> Obj:
    pod = cluster.store.get(PODS.name, "default", name)
    assert pod is not None
    return dict(pod.get("status") or {})


def conditions(status: Obj) -> dict[str, tuple[str, str | None]]:
    return {c["type"]: (c["status"], c.get("reason")) for c in status.get("conditions") or []}


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    for _ in range(int(timeout / 0.01)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_running_then_succeeded(cluster: Cluster) -> None:
    create_pod(cluster, "ok", exit_code=0, policy="Never")
    running = await until(lambda: (s := status(cluster, "ok")).get("phase") == "Running" and s)
    node = next(iter(cluster.nodes))
    assert running["hostIP"] == cluster.node_ip(node)
    assert running["hostIPs"] == [{"ip": running["hostIP"]}]
    assert running["podIPs"] == [{"ip": running["podIP"]}]
    assert running["startTime"]
    assert conditions(running) == {
        "PodScheduled": ("True", None),
        "PodReadyToStartContainers": ("True", None),
        "Initialized": ("True", None),
        "Ready": ("True", None),
        "ContainersReady": ("True", None),
    }
    (cs,) = running["containerStatuses"]
    assert cs["state"] == {"running": {"startedAt": running["startTime"]}}
    assert (cs["name"], cs["ready"], cs["started"], cs["restartCount"]) == ("main", True, True, 0)
    assert cs["lastState"] == {} and cs["image"] == "busybox:1.36"
    assert cs["imageID"].startswith("busybox@sha256:")
    assert cs["containerID"].startswith("containerd://")

    done = await until(lambda: (s := status(cluster, "ok")).get("phase") == "Succeeded" and s)
    assert conditions(done)["Ready"] == ("False", "PodCompleted")
    assert conditions(done)["ContainersReady"] == ("False", "PodCompleted")
    assert conditions(done)["PodReadyToStartContainers"] == ("False", None)
    (cs,) = done["containerStatuses"]
    assert cs["state"] == {
        "terminated": {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": running["startTime"],
            "finishedAt": cs["state"]["terminated"]["finishedAt"],
            "containerID": cs["containerID"],
        }
    }
    assert not cs["ready"] and not cs["started"]


async def test_failed_exit(cluster: Cluster) -> None:
    create_pod(cluster, "bad", exit_code=3, policy="Never")
    done = await until(lambda: (s := status(cluster, "bad")).get("phase") == "Failed" and s)
    assert conditions(done)["Ready"] == ("False", "PodFailed")
    terminated = done["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")


async def test_restart_in_place_then_node_lost(cluster: Cluster) -> None:
    create_pod(cluster, "flaky", exit_code=1, policy="OnFailure")
    first = await until(lambda: (s := status(cluster, "flaky")).get("containerStatuses") and s)
    first_id = first["containerStatuses"][0]["containerID"]
    restarted = await until(
        lambda: (s := status(cluster, "flaky"))["containerStatuses"][0]["restartCount"] >= 1 and s
    )
    assert restarted["phase"] == "Running"
    (cs,) = restarted["containerStatuses"]
    last = cs["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"], last["containerID"]) == (1, "Error", first_id)
    assert last["startedAt"] == first["startTime"] and last["finishedAt"]
    assert cs["state"] == {"running": {"startedAt": last["finishedAt"]}}
    assert cs["containerID"] != first_id

    node = next(iter(cluster.nodes))
    cluster.kubelet.evict_node(node)
    lost = status(cluster, "flaky")
    assert (lost["phase"], lost["reason"]) == ("Failed", "NodeLost")
    assert lost["message"] == f"Node {node} which was running pod flaky is unresponsive"
    assert conditions(lost)["DisruptionTarget"] == ("True", "DeletionByTaintManager")
    assert conditions(lost)["Ready"] == ("False", "PodFailed")
    (cs,) = lost["containerStatuses"]
    terminated = cs["state"]["terminated"]
    assert terminated["exitCode"] == 137 and terminated["reason"] == "ContainerStatusUnknown"
    assert terminated["startedAt"] == last["finishedAt"]
    assert cs["restartCount"] >= 1 and not cs["ready"] and not cs["started"]


async def test_node_lost_before_the_pod_started(cluster: Cluster) -> None:
    node = next(iter(cluster.nodes))
    create_pod(cluster, "early", exit_code=0, policy="Never", node=node)
    cluster.kubelet.evict_node(node, [("default", "early")])
    lost = status(cluster, "early")
    assert lost["phase"] == "Failed" and lost["reason"] == "NodeLost"
    assert lost["containerStatuses"] == [
        {
            "name": "main",
            "image": "busybox:1.36",
            "imageID": "",
            "restartCount": 0,
            "ready": False,
            "started": False,
            "lastState": {},
            "state": {
                "terminated": {
                    "exitCode": 137,
                    "reason": "ContainerStatusUnknown",
                    "message": "The container could not be located when the pod was terminated",
                    "finishedAt": lost["conditions"][-1]["lastTransitionTime"],
                }
            },
        }
    ]
    await asyncio.sleep(0.1)  # the cancelled start timer does not bring it back
    assert status(cluster, "early")["phase"] == "Failed"
