"""A region's load, computed from the Kubernetes API alone.

Input is the raw JSON of the region's nodes and its live pods (one `RegionListing`);
output is a `RegionLoad`: what the cluster can tell of the fields placement scores (the
central service adds health state, worker polling and network quality).

The definitions the health probe, the scaling loop, placement and the API share live
here, once: which node conditions are pressure, what "pending" means, what a node's
allocatable and a pod's requests are, and the water level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.serverless.kinds import (
    ANNOTATION_BILLED_CPU,
    ANNOTATION_BILLED_MEMORY,
    CAPACITY_SERVERLESS,
    LABEL_CAPACITY,
    is_serverless_node,
)
from meridian.serverless.models import GIB, ServerlessConfig

PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
TERMINAL_POD_PHASES = ("Succeeded", "Failed")


def water_level(cpu_requested: int, mem_requested: int, cpu_alloc: int, mem_alloc: int) -> float:
    """How full a region (or a node) is: requested / allocatable of the scarcer resource.

    The one definition; its inputs count only schedulable nodes (Ready, no pressure, not
    cordoned) and the pods bound to them, so a cordoned node adds neither room nor load.
    Edges, per resource: nothing allocatable and nothing requested is empty (0.0): an
    idle pool scaled to zero must not read as full and grow; nothing allocatable with
    something requested is full (1.0). It exceeds 1.0 when a resource is overcommitted.
    Placement does not rely on it for "no room at all": a region whose nodes are all
    cordoned has no free node, and its capacity filter says so.
    """

    def ratio(part: int, whole: int) -> float:
        if whole <= 0:
            return 1.0 if part > 0 else 0.0
        return part / whole

    return max(ratio(cpu_requested, cpu_alloc), ratio(mem_requested, mem_alloc))


def pods_free(pods_allocatable: int, pods_live: int) -> int | None:
    """Free pod slots of schedulable nodes (never below 0); None when their number is
    unknown (0 allocatable), which placement reads as "do not filter on slots"."""
    if pods_allocatable <= 0:
        return None
    return max(0, pods_allocatable - pods_live)


class ServerlessUsage(BaseModel):
    """What runs on a region's serverless (virtual) nodes, from the same listing.

    CPU and memory are the billed sizes (the pods' `meridian.io/billed-*` annotations,
    their requests when they carry none). `cpu_core_seconds` and `memory_gib_seconds` are
    the billed size times the run time so far of the pods still listed, as of the probe:
    prices turn them into cost (`meridian.regions.load.serverless_cost`).
    """

    nodes: int = 0
    ready: bool = False
    pods: int = 0
    cpu_millis: int = 0
    memory_bytes: int = 0
    # Burst pods the scheduler found no serverless room for: the quota is exhausted.
    waiting_pods: int = 0
    cpu_core_seconds: float = 0.0
    memory_gib_seconds: float = 0.0


class RegionLoad(BaseModel):
    """Load of a region's schedulable nodes; CPU in millicores, memory in bytes.

    Every field has a default: the probe's snapshot is in Temporal histories as a plain
    JSON object, and old ones (or a probe that could not list) decode as an empty load.
    """

    nodes_total: int = 0
    nodes_ready: int = 0
    nodes_cordoned: int = 0
    cpu_allocatable_millis: int = 0
    cpu_requested_millis: int = 0
    memory_allocatable_bytes: int = 0
    memory_requested_bytes: int = 0
    # Pod slots (`allocatable.pods`) of the same nodes and the live pods bound to them.
    # 0 allocatable is unknown: a node does not report its slots, or a snapshot from
    # before they were counted. Placement then does not filter on slots.
    pods_allocatable: int = 0
    pods_live: int = 0
    # The most free on any single schedulable node with a pod slot free (CPU first, then
    # that node's memory): a pod cannot span nodes, nor bind to a node without a slot.
    largest_free_cpu_millis: int = 0
    largest_free_memory_bytes: int = 0
    # Live pods not yet bound to a node (see `is_pending`).
    pending_pods: int = 0
    # The region's serverless nodes, when it has any (they are not in the fields above).
    serverless: ServerlessUsage | None = None

    @property
    def water_level(self) -> float:
        return water_level(
            self.cpu_requested_millis,
            self.memory_requested_bytes,
            self.cpu_allocatable_millis,
            self.memory_allocatable_bytes,
        )

    @property
    def cpu_free_millis(self) -> int:
        return self.cpu_allocatable_millis - self.cpu_requested_millis

    @property
    def memory_free_bytes(self) -> int:
        return self.memory_allocatable_bytes - self.memory_requested_bytes

    @property
    def pods_free(self) -> int | None:
        """Free pod slots; None when unknown (`pods_allocatable` 0)."""
        return pods_free(self.pods_allocatable, self.pods_live)


def _quantity(value: Any, parse: Callable[[Any], float]) -> int:
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


def node_allocatable(node: dict[str, Any]) -> tuple[int, int]:
    """(CPU millis, memory bytes) the node offers pods; its capacity when it reports no
    allocatable (some providers' nodes, while they register)."""
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    return (
        _quantity(alloc.get("cpu"), parse_cpu_millis),
        _quantity(alloc.get("memory"), parse_memory_bytes),
    )


def node_pod_slots(node: dict[str, Any]) -> int:
    """The pods the node takes (`allocatable.pods`, its capacity when it reports no
    allocatable, as `node_allocatable`); 0 when it says nothing (unknown)."""
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    # An integral quantity, bounded as memory is ("1e999999" is refused, not expanded).
    return max(0, _quantity(alloc.get("pods"), parse_memory_bytes))


def node_condition(node: dict[str, Any], kind: str) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return bool(cond.get("status") == "True")
    return False


def node_pressure(node: dict[str, Any]) -> list[str]:
    """The pressure conditions that are True on the node."""
    return [kind for kind in PRESSURE_CONDITIONS if node_condition(node, kind)]


def node_cordoned(node: dict[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def node_is_schedulable(node: dict[str, Any]) -> bool:
    """Counts toward the water level: Ready, no pressure, not cordoned."""
    return not node_cordoned(node) and node_condition(node, "Ready") and not node_pressure(node)


def is_live(pod: dict[str, Any]) -> bool:
    """Still holding (or asking for) resources: not Succeeded, not Failed."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES


def pod_node(pod: dict[str, Any]) -> str | None:
    return (pod.get("spec") or {}).get("nodeName") or None


def is_pending(pod: dict[str, Any]) -> bool:
    """Pending means not yet scheduled: a live pod the scheduler has not bound to a node.

    Not the pod phase `Pending`, which also covers pods already bound and pulling their
    image: those hold their node's resources and count in its requests instead. Of the
    pending pods, the scheduler marks those it found no room for `Unschedulable`
    (`is_unschedulable`): that is the demand the scaling loop grows pools for.
    """
    return is_live(pod) and pod_node(pod) is None


def is_unschedulable(pod: dict[str, Any]) -> bool:
    """Pending, and the scheduler said why: no node has room for it (PodScheduled=False,
    reason Unschedulable)."""
    if not is_pending(pod):
        return False
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return bool(cond.get("reason") == "Unschedulable")
    return False


def requests_by_node(pods: Iterable[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(CPU millis, memory bytes) the live pods bound to each node request."""
    return {node: (cpu, mem) for node, (cpu, mem, _) in usage_by_node(pods).items()}


def usage_by_node(pods: Iterable[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """(CPU millis, memory bytes, pods) of the live pods bound to each node: what they
    request and how many of its pod slots they hold."""
    by_node: dict[str, tuple[int, int, int]] = {}
    for pod in pods:
        node = pod_node(pod)
        if node is None or not is_live(pod):
            continue
        cpu, mem = pod_requests(pod)
        prev_cpu, prev_mem, prev_pods = by_node.get(node, (0, 0, 0))
        by_node[node] = (prev_cpu + cpu, prev_mem + mem, prev_pods + 1)
    return by_node


def compute_load(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], now: float | None = None
) -> RegionLoad:
    """Allocatable vs requested over schedulable nodes, pod slots included; the largest
    free node. A node whose pod slots are all held adds its room to the totals (the
    water level) but is not a largest free node: no pod can bind to it. When a node
    does not report its slots the region's are unknown (`pods_allocatable` 0), rather
    than the sum of the others': that node may have room.

    Serverless (virtual) nodes are left out: their allocatable is a quota, not a pool's
    room, and their pods are not load on the pools. They are reported on their own
    (`serverless`), with run time up to `now` (epoch seconds; none counted without it)."""
    virtual = [n for n in nodes if is_serverless_node(n)]
    nodes = [n for n in nodes if not is_serverless_node(n)]
    used = usage_by_node(pods)
    load = RegionLoad(
        nodes_total=len(nodes),
        nodes_ready=sum(1 for n in nodes if node_condition(n, "Ready")),
        nodes_cordoned=sum(1 for n in nodes if node_cordoned(n)),
        pending_pods=sum(1 for p in pods if is_pending(p)),
    )
    slots_unknown = False
    for node in nodes:
        if not node_is_schedulable(node):
            continue
        n_cpu, n_mem = node_allocatable(node)
        n_pods = node_pod_slots(node)
        r_cpu, r_mem, r_pods = used.get(_name(node), (0, 0, 0))
        load.cpu_allocatable_millis += n_cpu
        load.memory_allocatable_bytes += n_mem
        load.cpu_requested_millis += r_cpu
        load.memory_requested_bytes += r_mem
        load.pods_allocatable += n_pods
        load.pods_live += r_pods
        slots_unknown = slots_unknown or not n_pods
        if n_pods and r_pods >= n_pods:
            continue
        free = (max(0, n_cpu - r_cpu), max(0, n_mem - r_mem))
        # The node with the most free CPU, and its memory, is what one pod could get.
        if free > (load.largest_free_cpu_millis, load.largest_free_memory_bytes):
            load.largest_free_cpu_millis, load.largest_free_memory_bytes = free
    if slots_unknown:
        load.pods_allocatable = 0
    if virtual:
        load.serverless = serverless_usage(virtual, pods, now)
    return load


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def billed_size(pod: dict[str, Any]) -> tuple[int, int]:
    """(CPU millis, memory bytes) a burst pod is billed for: its billed-size annotations,
    its requests when it has none."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    cpu, mem = pod_requests(pod)
    billed_cpu = _quantity(annotations.get(ANNOTATION_BILLED_CPU), parse_cpu_millis)
    billed_mem = _quantity(annotations.get(ANNOTATION_BILLED_MEMORY), parse_memory_bytes)
    return billed_cpu or cpu, billed_mem or mem


def _started_at(pod: dict[str, Any]) -> float | None:
    text = (pod.get("status") or {}).get("startTime")
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def serverless_usage(
    virtual: list[dict[str, Any]], pods: list[dict[str, Any]], now: float | None
) -> ServerlessUsage:
    names = {_name(n) for n in virtual}
    usage = ServerlessUsage(
        nodes=len(virtual), ready=any(node_condition(n, "Ready") for n in virtual)
    )
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if is_unschedulable(pod) and labels.get(LABEL_CAPACITY) == CAPACITY_SERVERLESS:
            usage.waiting_pods += 1
        if pod_node(pod) not in names or not is_live(pod):
            continue
        cpu, mem = billed_size(pod)
        usage.pods += 1
        usage.cpu_millis += cpu
        usage.memory_bytes += mem
        started = _started_at(pod)
        if now is not None and started is not None:
            seconds = max(0.0, now - started)
            usage.cpu_core_seconds += cpu / 1000 * seconds
            usage.memory_gib_seconds += mem / GIB * seconds
    return usage


def serverless_cost(usage: ServerlessUsage, config: ServerlessConfig) -> float:
    """What the pods listed on the serverless nodes have cost so far, in config.currency."""
    return (
        usage.cpu_core_seconds / 3600 * config.price_per_vcpu_hour
        + usage.memory_gib_seconds / 3600 * config.price_per_gib_hour
    )
