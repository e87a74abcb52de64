"""A region's serverless capacity, simulated as one virtual node.

The node looks like the cloud's own (its labels and taints, as the cloud documents them and
`meridian.serverless.steering` expects), reports the declared limits (max pods, CPU and
memory) as its allocatable, which the scheduler treats as the quota they are, and runs
pods after the declared cold start. Each pod is charged for the size the cloud would bill
(its requests rounded up, `meridian.serverless.sizing`) times the declared prices, from
binding (the cloud starts pulling the image) until the pod ends.

The regions file's `serverless` block is read with Meridian's own model, so kubesim and
the engine agree on every default.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from typing import Any

from kubesim.config import RegionSpec
from kubesim.nodes import REGION_LABEL, Pool, build_node
from kubesim.store import DELETED
from kubesim.types import Obj
from meridian.serverless.cost import cost_for
from meridian.serverless.kinds import GKE_BURST_CLASS, LABEL_CAPACITY, ServerlessKind
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.sizing import BilledSize, SizeError, format_cpu, format_memory, round_up

TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class Shape:
    """What the cloud's virtual node looks like, and which pods its admission sends there."""

    name: str
    labels: dict[str, str]
    taints: list[Obj]
    # Pod labels that make the cloud's webhook send the pod there (and only there).
    capture_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The cloud adds the toleration itself for pods that select the node's label.
    selector_implies_toleration: bool = False


def shape_for(config: ServerlessConfig, region: str, location: str) -> Shape:
    kind = config.kind
    vk = {"type": "virtual-kubelet", "kubernetes.io/role": "agent"}

    def provider_taint(value: str) -> list[Obj]:
        return [{"key": "virtual-kubelet.io/provider", "value": value, "effect": "NoSchedule"}]

    if kind is ServerlessKind.FARGATE:
        # Fargate runs each pod on a node of its own; one node stands for them all here.
        # The profile's selector (namespace and labels) decides, not the pod's spec.
        return Shape(
            f"fargate-{location}",
            {"eks.amazonaws.com/compute-type": "fargate"},
            [{"key": "eks.amazonaws.com/compute-type", "value": "fargate", "effect": "NoSchedule"}],
            capture_labels={LABEL_CAPACITY: ("serverless",)},
        )
    if kind is ServerlessKind.ACI:
        return Shape(
            "virtual-node-aci-linux",
            {**vk, "kubernetes.io/os": "linux"},
            [
                *provider_taint("azure"),
                {"key": "azure.com/aci", "effect": "NoSchedule"},
            ],
        )
    if kind is ServerlessKind.AUTOPILOT:
        compute_class = config.compute_class or GKE_BURST_CLASS
        return Shape(
            f"gk3-{location}-{compute_class}",
            {"cloud.google.com/compute-class": compute_class},
            [
                {
                    "key": "cloud.google.com/compute-class",
                    "value": compute_class,
                    "effect": "NoSchedule",
                }
            ],
            selector_implies_toleration=True,
        )
    if kind is ServerlessKind.ECI:
        return Shape(
            f"virtual-kubelet-{location}",
            {**vk, "alibabacloud.com/virtual-node": "true"},
            provider_taint("alibabacloud"),
            capture_labels={"alibabacloud.com/eci": ("true",)},
        )
    if kind is ServerlessKind.TKE_SUPERNODE:
        return Shape(
            f"eklet-{location}",
            {"node.kubernetes.io/instance-type": "eklet"},
            [{"key": "eks.tke.cloud.tencent.com/eklet", "effect": "NoSchedule"}],
        )
    if kind is ServerlessKind.BCI:
        return Shape("bci-virtual-kubelet-0", dict(vk), provider_taint("baidu"))
    # CCI: the bursting add-on's node; `enforce` pods go only there.
    return Shape(
        "bursting-node",
        dict(vk),
        provider_taint("huawei"),
        capture_labels={"virtual-kubelet.io/burst-to-cci": ("enforce",)},
    )


def _tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for tol in tolerations:
        effect = tol.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key")
        if tol.get("operator", "Equal") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


@dataclass(slots=True)
class Charge:
    size: BilledSize
    started: float


class VirtualCapacity:
    """One region's serverless capacity: its node, quota switch and cost ledger."""

    def __init__(self, config: ServerlessConfig, region: str, location: str) -> None:
        self.config = config
        self.region = region
        self.shape = shape_for(config, region, location)
        self.exhausted = False  # quota used up at the cloud (a fault the control API sets)
        self.charges: dict[tuple[str, str], Charge] = {}
        self.cost_done = 0.0
        self.pods_billed = 0

    @classmethod
    def from_region(cls, spec: RegionSpec) -> VirtualCapacity | None:
        raw = spec.extra.get("serverless")
        if raw is None:
            return None
        try:
            config = ServerlessConfig.model_validate(raw)
        except ValueError as exc:
            raise ValueError(f"region {spec.name}: invalid serverless block: {exc}") from exc
        if not config.enabled:
            return None
        return cls(config, spec.name, spec.location)

    @property
    def node_name(self) -> str:
        return self.shape.name

    @property
    def cold_start(self) -> float:
        return self.config.cold_start_seconds

    # ---- the node -----------------------------------------------------------------------
    def build_node(self, ip: str) -> Obj:
        quota = Pool(
            "",
            format_cpu(self.config.max_cpu_millis),
            format_memory(self.config.max_memory_bytes),
            0,
            0,
            0,
        )
        node = build_node(self.region, quota, self.node_name, True, ip)
        labels = node["metadata"]["labels"]
        labels.pop("kubesim.io/pool", None)
        labels["node.kubernetes.io/instance-type"] = f"{self.config.kind.value}-virtual"
        labels.update(self.shape.labels)
        labels[REGION_LABEL] = self.region
        status = node["status"]
        for key in ("capacity", "allocatable"):
            status[key]["pods"] = str(self.config.max_pods)
        node["spec"]["taints"] = [dict(t) for t in self.shape.taints]
        node["metadata"]["annotations"]["kubesim.io/serverless-kind"] = self.config.kind.value
        return node

    # ---- admission ------------------------------------------------------------------------
    def captures(self, pod: Obj) -> bool:
        """The cloud's webhook sends this pod here and nowhere else."""
        labels = pod["metadata"].get("labels") or {}
        if self.config.kind is ServerlessKind.FARGATE:
            namespaces = self.config.namespaces
            namespace = str(pod["metadata"].get("namespace") or "")
            if namespaces and not any(fnmatch.fnmatchcase(namespace, n) for n in namespaces):
                return False
        return any(labels.get(k) in values for k, values in self.shape.capture_labels.items())

    def admits(self, pod: Obj, node_labels: dict[str, str], taints: list[Obj]) -> bool:
        """The pod may run here: captured, or it selects the node and tolerates its taints."""
        if self.captures(pod):
            return True
        spec = pod.get("spec") or {}
        selector = spec.get("nodeSelector") or {}
        if not selector or any(node_labels.get(k) != v for k, v in selector.items()):
            return False
        if self.shape.selector_implies_toleration:
            return True
        tolerations = spec.get("tolerations") or []
        return all(
            _tolerates(tolerations, t)
            for t in taints
            if t.get("effect") in ("NoSchedule", "NoExecute")
            and t.get("key") != "node.kubernetes.io/not-ready"
        )

    def billed(self, cpu_millis: int, memory_bytes: int) -> BilledSize | None:
        """The size the cloud runs a pod with these requests on; None if none holds it."""
        try:
            return round_up(self.config, cpu_millis, memory_bytes)
        except SizeError:
            return None

    # ---- cost -------------------------------------------------------------------------------
    def on_pod(self, type_: str, pod: Obj, prev: Obj | None, requests: tuple[int, int]) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        on_node = (pod.get("spec") or {}).get("nodeName") == self.node_name
        live = type_ != DELETED and (pod.get("status") or {}).get("phase") not in TERMINAL
        charge = self.charges.get(key)
        if on_node and live and charge is None:
            size = self.billed(*requests)
            if size is not None:
                self.charges[key] = Charge(size, time.time())
                self.pods_billed += 1
        elif charge is not None and not (on_node and live):
            del self.charges[key]
            self.cost_done += cost_for(self.config, charge.size, time.time() - charge.started)

    def cost(self) -> float:
        now = time.time()
        running = sum(cost_for(self.config, c.size, now - c.started) for c in self.charges.values())
        return self.cost_done + running

    def report(self, ready: bool, pods: int, cpu_used: int, memory_used: int) -> dict[str, Any]:
        config = self.config
        return {
            "region": self.region,
            "kind": config.kind.value,
            "node": self.node_name,
            "ready": ready,
            "exhausted": self.exhausted,
            "cold_start_seconds": config.cold_start_seconds,
            "quota": {
                "pods": config.max_pods,
                "cpu": format_cpu(config.max_cpu_millis),
                "memory": format_memory(config.max_memory_bytes),
            },
            "used": {
                "pods": pods,
                "cpu": format_cpu(cpu_used),
                "memory": format_memory(memory_used),
            },
            "pods_billed": self.pods_billed,
            "cost": round(self.cost(), 6),
            "currency": config.currency,
            "price_per_vcpu_hour": config.price_per_vcpu_hour,
            "price_per_gib_hour": config.price_per_gib_hour,
        }
