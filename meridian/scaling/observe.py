"""Turn a region's raw Kubernetes JSON (nodes, live pods: one `RegionListing`) and its
pools into the scaling policy's observation. Pure: the unit activity does the I/O and
calls this. Node health, allocatable, requests and "pending" are as
`meridian.regions.load` defines them for the health probe too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from meridian.kube.labels import LABEL_MANAGED, LABEL_TASK_ID
from meridian.nodepools import PoolState
from meridian.regions.load import (
    is_live,
    is_unschedulable,
    node_allocatable,
    node_condition,
    node_cordoned,
    node_pressure,
    pod_node,
    pod_requests,
)
from meridian.scaling import NodeObservation, PoolObservation, RegionObservation, Request
from meridian.serverless.kinds import is_serverless_node

# Pool label of the simulator and of the clouds whose nodes carry one; a node that no
# provider lists falls back to these before "unknown".
POOL_LABELS = (
    "kubesim.io/pool",
    "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
    "cloud.google.com/gke-nodepool",
    "alibabacloud.com/nodepool-id",
    "tke.cloud.tencent.com/nodepool-id",
    "cce.baidubce.com/instance-group-id",
    "cce.cloud.com/cce-nodepool",
)
UNKNOWN_POOL = "unknown"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


def _created_at(obj: dict[str, Any]) -> float | None:
    stamp = _meta(obj).get("creationTimestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _is_daemon(pod: dict[str, Any]) -> bool:
    owners = _meta(pod).get("ownerReferences") or []
    return any(o.get("kind") == "DaemonSet" for o in owners)


def meridian_task_id(pod: dict[str, Any]) -> str | None:
    labels = _meta(pod).get("labels") or {}
    if labels.get(LABEL_MANAGED) != "true":
        return None
    task_id = labels.get(LABEL_TASK_ID)
    return str(task_id) if task_id else None


def pool_of(node: dict[str, Any], listed: dict[str, str]) -> str:
    name = str(_meta(node).get("name", ""))
    if name in listed:
        return listed[name]
    labels = _meta(node).get("labels") or {}
    for label in POOL_LABELS:
        if labels.get(label):
            return str(labels[label])
    return UNKNOWN_POOL


def observe(
    region: str,
    at: float,
    nodes: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
    pools: Iterable[tuple[PoolState, int, int]],
) -> tuple[RegionObservation, list[Request]]:
    """`pools` are (state, node cpu millis, node memory bytes) — 0 when not known, which
    lets the policy learn a node's size from the pool's existing nodes."""
    pool_list = list(pools)
    listed = {node: state.name for state, _, _ in pool_list for node in state.nodes}
    per_node: dict[str, dict[str, Any]] = {}
    pending: list[Request] = []
    for pod in pods:
        if not is_live(pod):
            continue
        cpu, mem = pod_requests(pod)
        node_name = pod_node(pod)
        if node_name is None:
            # Pending; only a pod the scheduler found no room for is demand.
            if is_unschedulable(pod):
                meta = _meta(pod)
                pending.append(
                    Request(id=f"{meta.get('namespace')}/{meta.get('name')}", cpu=cpu, mem=mem)
                )
            continue
        usage = per_node.setdefault(node_name, {"cpu": 0, "mem": 0, "tasks": [], "other": 0})
        usage["cpu"] += cpu
        usage["mem"] += mem
        task_id = meridian_task_id(pod)
        if task_id is not None:
            usage["tasks"].append(task_id)
        elif not _is_daemon(pod):
            usage["other"] += 1
    node_obs: list[NodeObservation] = []
    for node in nodes:
        if is_serverless_node(node):
            # A virtual node's quota is not room the pools have: counting it would make a
            # full region look empty and shrink its pools under load.
            continue
        name = str(_meta(node).get("name", ""))
        cpu, mem = node_allocatable(node)
        usage = per_node.get(name, {"cpu": 0, "mem": 0, "tasks": [], "other": 0})
        node_obs.append(
            NodeObservation(
                name=name,
                pool=pool_of(node, listed),
                ready=node_condition(node, "Ready"),
                conditions=node_pressure(node),
                unschedulable=node_cordoned(node),
                cpu_allocatable=cpu,
                mem_allocatable=mem,
                cpu_requested=usage["cpu"],
                mem_requested=usage["mem"],
                task_ids=sorted(set(usage["tasks"])),
                other_pods=usage["other"],
                created_at=_created_at(node),
            )
        )
    ready_by_pool: dict[str, int] = {}
    for n in node_obs:
        if n.ready:
            ready_by_pool[n.pool] = ready_by_pool.get(n.pool, 0) + 1
    pool_obs = [
        PoolObservation(
            name=state.name,
            min=state.min,
            desired=state.desired,
            max=state.max,
            current=state.current,
            ready=ready_by_pool.get(state.name, 0),
            autoscaler_enabled=state.autoscaler_enabled,
            node_cpu=cpu,
            node_mem=mem,
        )
        for state, cpu, mem in pool_list
    ]
    observation = RegionObservation(
        region=region,
        at=at,
        pools=sorted(pool_obs, key=lambda p: p.name),
        nodes=sorted(node_obs, key=lambda n: n.name),
    )
    return observation, sorted(pending, key=lambda r: r.id)
