"""A region's load and health, computed from the Kubernetes API alone.

Input is the raw JSON of the region's nodes and its non-terminal pods; output is a plain
dict with the fields of `meridian.placement.types.RegionSnapshot` that the cluster can
tell (the central service adds health state, worker polling and network quality).
"""

from __future__ import annotations

from typing import Any

from meridian.quantity import parse_cpu_millis, parse_memory_bytes

PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")


def _quantity(value: Any, parse: Any) -> int:
    try:
        return int(parse(value)) if value is not None else 0
    except ValueError:
        return 0


def pod_requests(pod: dict[str, Any]) -> tuple[int, int]:
    cpu = mem = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += _quantity(requests.get("cpu"), parse_cpu_millis)
        mem += _quantity(requests.get("memory"), parse_memory_bytes)
    return cpu, mem


def node_condition(node: dict[str, Any], kind: str) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return bool(cond.get("status") == "True")
    return False


def node_is_schedulable(node: dict[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    if not node_condition(node, "Ready"):
        return False
    return not any(node_condition(node, kind) for kind in PRESSURE_CONDITIONS)


def compute_load(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """Allocatable vs requested over Ready, schedulable nodes; the largest free node."""
    requested_by_node: dict[str, tuple[int, int]] = {}
    pending = 0
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            continue
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            pending += 1
            continue
        cpu, mem = pod_requests(pod)
        prev_cpu, prev_mem = requested_by_node.get(node_name, (0, 0))
        requested_by_node[node_name] = (prev_cpu + cpu, prev_mem + mem)

    cpu_alloc = cpu_req = mem_alloc = mem_req = 0
    largest_cpu = largest_mem = 0
    ready = 0
    cordoned = 0
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "")
        if (node.get("spec") or {}).get("unschedulable"):
            cordoned += 1
        if node_condition(node, "Ready"):
            ready += 1
        if not node_is_schedulable(node):
            continue
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        n_cpu = _quantity(allocatable.get("cpu"), parse_cpu_millis)
        n_mem = _quantity(allocatable.get("memory"), parse_memory_bytes)
        r_cpu, r_mem = requested_by_node.get(name, (0, 0))
        cpu_alloc += n_cpu
        mem_alloc += n_mem
        cpu_req += r_cpu
        mem_req += r_mem
        free_cpu, free_mem = max(0, n_cpu - r_cpu), max(0, n_mem - r_mem)
        # The node with the most free CPU, and its memory, is what one pod could get.
        if (free_cpu, free_mem) > (largest_cpu, largest_mem):
            largest_cpu, largest_mem = free_cpu, free_mem
    return {
        "nodes_total": len(nodes),
        "nodes_ready": ready,
        "nodes_cordoned": cordoned,
        "cpu_allocatable_millis": cpu_alloc,
        "cpu_requested_millis": cpu_req,
        "memory_allocatable_bytes": mem_alloc,
        "memory_requested_bytes": mem_req,
        "largest_free_cpu_millis": largest_cpu,
        "largest_free_memory_bytes": largest_mem,
        "pending_pods": pending,
    }


def water_level(load: dict[str, Any]) -> float:
    cpu_alloc = int(load.get("cpu_allocatable_millis") or 0)
    mem_alloc = int(load.get("memory_allocatable_bytes") or 0)
    if cpu_alloc <= 0 or mem_alloc <= 0:
        return 1.0
    return max(
        int(load.get("cpu_requested_millis") or 0) / cpu_alloc,
        int(load.get("memory_requested_bytes") or 0) / mem_alloc,
    )
