"""Nodes and node pools of one simulated cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubesim.config import PoolSpec, cpu_millis, memory_bytes
from kubesim.types import Key, Obj
from kubesim.util import new_uid, now_iso

if TYPE_CHECKING:
    from kubesim.serverless import VirtualCapacity

POOL_LABEL = "kubesim.io/pool"
REGION_LABEL = "topology.kubernetes.io/region"
MAX_PODS = 110
KUBELET_VERSION = "v1.32.0"


@dataclass(slots=True)
class Pool:
    name: str
    cpu: str
    memory: str
    min: int
    max: int
    desired: int
    next_index: int = 0
    nodes: list[str] = field(default_factory=list)
    price_per_hour: float | None = None
    # The node ledger: when each current node was launched (a cloud bills a node from
    # launch, boot included, until it is removed), and the node-seconds of removed ones.
    launched: dict[str, float] = field(default_factory=dict)
    node_seconds_done: float = 0.0

    @classmethod
    def from_spec(cls, spec: PoolSpec) -> Pool:
        return cls(
            spec.name,
            spec.cpu,
            spec.memory,
            spec.min,
            spec.max,
            spec.count,
            price_per_hour=spec.price_per_hour,
        )

    def node_launched(self, name: str, at: float) -> None:
        self.launched.setdefault(name, at)

    def node_removed(self, name: str, at: float) -> None:
        started = self.launched.pop(name, None)
        if started is not None:
            self.node_seconds_done += max(0.0, at - started)

    def node_seconds(self, now: float) -> float:
        """Node-seconds billed so far: removed nodes' and the current ones' up to now."""
        running = sum(max(0.0, now - started) for started in self.launched.values())
        return self.node_seconds_done + running


@dataclass(slots=True)
class NodeState:
    """Scheduling view of a node, kept in step with the Node object and its pods."""

    name: str
    pool: str
    cpu: int  # allocatable millicores
    memory: int  # allocatable bytes
    pods_max: int
    labels: dict[str, str]
    ready: bool = False
    schedulable: bool = True
    cpu_used: int = 0
    memory_used: int = 0
    pods: set[Key] = field(default_factory=set)
    # Set on the node that stands for the region's serverless capacity: its allocatable
    # is the declared quota, and pods count there at their billed size.
    virtual: VirtualCapacity | None = None
    taints: list[Obj] = field(default_factory=list)

    def fits(self, cpu: int, memory: int) -> bool:
        return (
            len(self.pods) < self.pods_max
            and self.cpu_used + cpu <= self.cpu
            and self.memory_used + memory <= self.memory
        )


def ready_condition(
    ready: bool, stamp: str, reason: str | None = None, message: str | None = None
) -> Obj:  # noqa: E501
    if ready:
        return {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason or "KubeletReady",
            "message": message or "kubelet is posting ready status",
        }
    return {
        "type": "Ready",
        "status": "False",
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason or "KubeletNotReady",
        "message": message or "container runtime network not ready: NetworkReady=false",
    }


def build_node(region: str, pool: Pool, name: str, ready: bool, ip: str) -> Obj:
    stamp = now_iso()
    capacity = {
        "cpu": pool.cpu,
        "memory": pool.memory,
        "pods": str(MAX_PODS),
        "ephemeral-storage": "100Gi",
    }
    taints: list[Obj] = []
    if not ready:
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    spec: Obj = {"providerID": f"kubesim://{region}/{name}"}
    if taints:
        spec["taints"] = taints
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": new_uid(),
            "creationTimestamp": stamp,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": f"kubesim-{pool.cpu}c-{pool.memory}",
                REGION_LABEL: region,
                "topology.kubernetes.io/zone": f"{region}-a",
                POOL_LABEL: pool.name,
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
        "status": {
            "capacity": dict(capacity),
            "allocatable": dict(capacity),
            "conditions": [
                {
                    "type": "MemoryPressure",
                    "status": "False",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": "KubeletHasSufficientMemory",
                    "message": "kubelet has sufficient memory available",
                },
                {
                    "type": "DiskPressure",
                    "status": "False",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": "KubeletHasNoDiskPressure",
                    "message": "kubelet has no disk pressure",
                },
                {
                    "type": "PIDPressure",
                    "status": "False",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                    "reason": "KubeletHasSufficientPID",
                    "message": "kubelet has sufficient PID available",
                },
                ready_condition(ready, stamp),
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": new_uid().replace("-", ""),
                "systemUUID": new_uid(),
                "bootID": new_uid(),
                "kernelVersion": "6.1.0-kubesim",
                "osImage": "kubesim simulated node",
                "containerRuntimeVersion": "containerd://1.7.0-kubesim",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [],
        },
    }


def node_state_from(obj: Obj) -> NodeState:
    status = obj.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    labels = obj["metadata"].get("labels") or {}
    state = NodeState(
        name=obj["metadata"]["name"],
        pool=labels.get(POOL_LABEL, ""),
        cpu=cpu_millis(alloc.get("cpu", "0")),
        memory=memory_bytes(alloc.get("memory", "0")),
        pods_max=int(alloc.get("pods", MAX_PODS)),
        labels=dict(labels),
    )
    refresh_node_state(state, obj)
    return state


def refresh_node_state(state: NodeState, obj: Obj) -> None:
    status = obj.get("status") or {}
    state.ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    state.schedulable = not (obj.get("spec") or {}).get("unschedulable", False)
    state.labels = dict(obj["metadata"].get("labels") or {})
    state.taints = list((obj.get("spec") or {}).get("taints") or [])
    alloc = status.get("allocatable") or status.get("capacity") or {}
    if alloc:
        state.cpu = cpu_millis(alloc.get("cpu", "0"))
        state.memory = memory_bytes(alloc.get("memory", "0"))
        state.pods_max = int(alloc.get("pods", MAX_PODS))
