"""One simulated regional cluster: its store, control plane, nodes and faults."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from kubesim.config import Defaults, NetworkPath, RegionSpec
from kubesim.controllers.gc import GarbageCollector
from kubesim.controllers.job import JobController
from kubesim.controllers.pdb import PdbController
from kubesim.events import NORMAL, WARNING, EventRecorder
from kubesim.faults import FaultState, Stats
from kubesim.ipam import IpAllocator
from kubesim.kubelet import TERMINAL, Kubelet
from kubesim.nodes import (
    POOL_LABEL,
    NodeState,
    Pool,
    build_node,
    node_state_from,
    ready_condition,
    refresh_node_state,
)
from kubesim.resident import StatusServer
from kubesim.resources import ALL, EVENTS, JOBS, NAMESPACES, NODES, PDBS, PODS
from kubesim.scheduler import Scheduler, pod_requests
from kubesim.serverless import VirtualCapacity
from kubesim.store import DELETED, Entry, Store
from kubesim.types import Key, Obj
from kubesim.util import new_uid, now_iso

log = logging.getLogger(__name__)

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "meridian")
# Restore order: Jobs before their pods (so the Job controller knows the owners), nodes
# before pods (so node usage is accounted). Events are not saved.
RESTORE_ORDER = (NAMESPACES.name, NODES.name, JOBS.name, PDBS.name, PODS.name)
NOT_READY_TAINTS = [
    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
]


class Cluster:
    def __init__(
        self,
        spec: RegionSpec,
        defaults: Defaults,
        network: list[NetworkPath],
        *,
        ips: IpAllocator,
        watch_window: int = 1000,
        max_events: int = 5000,
    ) -> None:
        """``ips`` is the simulator's: shared by all its clusters, so that none of their
        pods or nodes share an address."""
        self.spec = spec
        self.ips = ips
        self.name = spec.name
        self.defaults = defaults
        self.store = Store(ALL, window=watch_window)
        self.events = EventRecorder(self.store, host=spec.name, max_events=max_events)
        self.faults = FaultState()
        self.stats = Stats()
        self.pools: dict[str, Pool] = {p.name: Pool.from_spec(p) for p in spec.pools}
        self.nodes: dict[str, NodeState] = {}
        self.pod_usage: dict[Key, tuple[str, int, int]] = {}
        self.network: dict[str, Obj] = {
            p.target: {"target": p.target, "rtt_ms": p.rtt_ms, "loss": p.loss}
            for p in network
            if p.source == spec.name
        }
        self.tasks: set[asyncio.Task[Any]] = set()
        self.provisioning: dict[str, asyncio.TimerHandle] = {}
        self.serverless = VirtualCapacity.from_region(spec)
        # Accounting listens first so that controllers see consistent node usage.
        self.store.listen(PODS.name, self._account_pod)
        self.store.listen(NODES.name, self._on_node)
        self.scheduler = Scheduler(self)
        self.kubelet = Kubelet(self, ips)
        self.jobs = JobController(self)
        self.pdbs = PdbController(self)
        self.gc = GarbageCollector(self)

    # ---- start -------------------------------------------------------------------------
    def bootstrap(self) -> None:
        for namespace in INITIAL_NAMESPACES:
            self.store.create(
                NAMESPACES.name,
                {
                    "kind": "Namespace",
                    "apiVersion": "v1",
                    "metadata": {
                        "name": namespace,
                        "uid": new_uid(),
                        "creationTimestamp": now_iso(),
                        "labels": {"kubernetes.io/metadata.name": namespace},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
            )
        for pool in self.pools.values():
            for _ in range(pool.desired):
                self._add_node(pool, ready=True)
        self._add_virtual_node()

    def _add_virtual_node(self) -> None:
        """The region's serverless capacity as a node (kubesim.serverless), if declared."""
        capacity = self.serverless
        if capacity is None or self.store.get(NODES.name, "", capacity.node_name) is not None:
            return
        self.store.create(NODES.name, capacity.build_node(self.ips.node_ip()))

    # ---- durable state (kubesim.state) ------------------------------------------------------
    def capture(self) -> tuple[Obj, dict[str, list[Entry]]]:
        """This cluster's state: small JSON-ready facts, and references to the stored object
        versions (never mutated in place, so they can be encoded off the event loop)."""
        loop = asyncio.get_running_loop()
        offset = time.time() - loop.time()
        facts: Obj = {
            "resource_version": self.store.rv,
            "pools": [
                {
                    "name": p.name,
                    "cpu": p.cpu,
                    "memory": p.memory,
                    "min": p.min,
                    "max": p.max,
                    "desired": p.desired,
                    "next_index": p.next_index,
                    "nodes": list(p.nodes),
                }
                for p in self.pools.values()
            ],
            "network": list(self.network.values()),
            "provisioning": {
                name: timer.when() + offset
                for name, timer in self.provisioning.items()
                if not timer.cancelled()
            },
            "kubelet": self.kubelet.capture(),
            "jobs": self.jobs.capture(),
        }
        # Events are not kept: they are half of a busy cluster's state and nothing depends
        # on them (a real cluster drops them after an hour too).
        entries = {
            name: list(rs.entries())
            for name, rs in self.store.resources.items()
            if name != EVENTS.name
        }
        return facts, entries

    def restore(self, saved: Obj, resume_rv: int) -> list[StatusServer]:
        """Load a saved state instead of ``bootstrap()``; returns the resident pods' status
        servers, which the caller starts before it reports ready."""
        loop = asyncio.get_running_loop()
        now = time.time()
        objects: dict[str, list[Obj]] = saved.get("objects") or {}
        self.store.resume_at(resume_rv)
        self.pools = {}
        for raw in saved.get("pools") or []:
            self.pools[raw["name"]] = Pool(
                raw["name"],
                raw["cpu"],
                raw["memory"],
                int(raw["min"]),
                int(raw["max"]),
                int(raw["desired"]),
                int(raw["next_index"]),
                list(raw["nodes"]),
            )
        self.network = {str(p["target"]): dict(p) for p in saved.get("network") or []}
        for node in objects.get(NODES.name) or []:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    self.ips.reserve_node_ip(str(address.get("address", "")))
        order = list(RESTORE_ORDER) + [n for n in objects if n not in RESTORE_ORDER]
        for name in order:
            if name not in self.store.resources or name == EVENTS.name:
                continue
            if name == PODS.name:
                self.jobs.restore(saved.get("jobs") or {})
            self.store.restore(name, objects.get(name) or [])
        prices = {p.name: p.price_per_hour for p in self.spec.pools}
        for pool in self.pools.values():
            pool.nodes = [n for n in pool.nodes if n in self.nodes]
            # The node ledger is not saved: it starts again at the restore.
            pool.price_per_hour = prices.get(pool.name)
            for name in pool.nodes:
                pool.node_launched(name, now)
        for name, at in (saved.get("provisioning") or {}).items():
            if name in self.nodes and not self.nodes[name].ready:
                self.provisioning[name] = loop.call_later(
                    max(0.0, float(at) - now), self._provisioned, name
                )
        servers = self.kubelet.restore(saved.get("kubelet") or {})
        self.jobs.resume()
        self.scheduler.restore()
        self.gc.restore()
        # A pool the regions file gained since the state was saved starts as at bootstrap.
        for spec in self.spec.pools:
            if spec.name not in self.pools:
                pool = self.pools[spec.name] = Pool.from_spec(spec)
                for _ in range(pool.desired):
                    self._add_node(pool, ready=True)
        self._add_virtual_node()
        return servers

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- accounting ---------------------------------------------------------------------
    def _account_pod(self, type_: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        phase = (pod.get("status") or {}).get("phase")
        uses = type_ != DELETED and bool(node) and phase not in TERMINAL
        current = self.pod_usage.get(key)
        capacity = self.serverless
        if capacity is not None and (node == capacity.node_name or key in capacity.charges):
            capacity.on_pod(type_, pod, prev, pod_requests(pod))
        if uses and current is None:
            cpu, memory = self.usage_of(pod, node)
            self.pod_usage[key] = (node, cpu, memory)
            state = self.nodes.get(node)
            if state is not None:
                state.cpu_used += cpu
                state.memory_used += memory
                state.pods.add(key)
        elif not uses and current is not None:
            del self.pod_usage[key]
            state = self.nodes.get(current[0])
            if state is not None:
                state.cpu_used -= current[1]
                state.memory_used -= current[2]
                state.pods.discard(key)
            self.scheduler.kick()

    def usage_of(self, pod: Obj, node: str) -> tuple[int, int]:
        """What a pod takes of its node: its requests, or on the serverless node the size
        the cloud bills (which is what its quota counts)."""
        cpu, memory = pod_requests(pod)
        capacity = self.serverless
        if capacity is not None and node == capacity.node_name:
            size = capacity.billed(cpu, memory)
            if size is not None:
                return size.cpu_millis, size.memory_bytes
        return cpu, memory

    def _on_node(self, type_: str, node: Obj, prev: Obj | None) -> None:
        name = node["metadata"]["name"]
        if type_ == DELETED:
            state = self.nodes.pop(name, None)
            pool = self.pools.get((node["metadata"].get("labels") or {}).get(POOL_LABEL, ""))
            if pool is not None and name in pool.nodes:
                pool.nodes.remove(name)
            if pool is not None:
                pool.node_removed(name, time.time())
            timer = self.provisioning.pop(name, None)
            if timer is not None:
                timer.cancel()
            if state is not None:
                pods = sorted(state.pods)
                asyncio.get_running_loop().call_soon(self.kubelet.evict_node, name, pods)
            return
        state = self.nodes.get(name)
        if state is None:
            state = self.nodes[name] = node_state_from(node)
            if self.serverless is not None and name == self.serverless.node_name:
                state.virtual = self.serverless
            for key, usage in self.pod_usage.items():
                if usage[0] == name:
                    state.pods.add(key)
                    state.cpu_used += usage[1]
                    state.memory_used += usage[2]
            was_ready, was_schedulable = False, False
        else:
            was_ready, was_schedulable = state.ready, state.schedulable
            refresh_node_state(state, node)
        if type_ != "ADDED" and state.ready != was_ready:
            self.kubelet.node_readiness_changed(name, state.ready)
        if state.ready and state.schedulable and not (was_ready and was_schedulable):
            self.scheduler.kick(0.0)

    def node_ip(self, node: str) -> str:
        obj = self.store.get(NODES.name, "", node)
        for address in ((obj or {}).get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return "127.255.0.1"

    # ---- nodes and pools ----------------------------------------------------------------
    def _add_node(self, pool: Pool, ready: bool) -> str:
        name = f"{self.name}-{pool.name}-{pool.next_index}"
        pool.next_index += 1
        while self.store.get(NODES.name, "", name) is not None:
            name = f"{self.name}-{pool.name}-{pool.next_index}"
            pool.next_index += 1
        node = build_node(self.name, pool, name, ready, self.ips.node_ip())
        self.store.create(NODES.name, node)
        pool.nodes.append(name)
        pool.node_launched(name, time.time())
        return name

    def set_node_ready(
        self, name: str, ready: bool, reason: str | None = None, message: str | None = None
    ) -> Obj | None:
        stamp = now_iso()

        def apply(node: Obj) -> bool:
            conditions = node.setdefault("status", {}).setdefault("conditions", [])
            current = next((c for c in conditions if c.get("type") == "Ready"), None)
            if current is not None and (current.get("status") == "True") == ready:
                return False
            replacement = ready_condition(
                ready,
                stamp,
                reason,
                message or (None if ready else "kubesim: node marked NotReady"),
            )
            node["status"]["conditions"] = [c for c in conditions if c.get("type") != "Ready"]
            node["status"]["conditions"].append(replacement)
            spec = node.setdefault("spec", {})
            taints = [
                t
                for t in spec.get("taints") or []
                if t.get("key") != "node.kubernetes.io/not-ready"
            ]  # noqa: E501
            if not ready:
                taints += [
                    dict(t, timeAdded=stamp) if t["effect"] == "NoExecute" else dict(t)
                    for t in NOT_READY_TAINTS
                ]
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            return True

        before = self.store.get(NODES.name, "", name)
        updated = self.store.mutate(NODES.name, "", name, apply)
        if updated is not None and updated is not before:
            self.events.record(
                updated,
                NORMAL if ready else WARNING,
                "NodeReady" if ready else "NodeNotReady",
                f"Node {name} status is now: {'NodeReady' if ready else 'NodeNotReady'}",
                "node-controller",
            )
        return updated

    def scale_pool(self, pool_name: str, desired: int, delay: float | None) -> Pool:
        pool = self.pools[pool_name]
        desired = max(0, desired)
        pool.desired = desired
        delay = self.defaults.provisioning_delay if delay is None else max(0.0, delay)
        loop = asyncio.get_running_loop()
        while len(pool.nodes) < desired:
            name = self._add_node(pool, ready=delay <= 0)
            if delay > 0:
                self.provisioning[name] = loop.call_later(delay, self._provisioned, name)
        if len(pool.nodes) > desired:
            # Remove the emptiest nodes first (newest first among equals).
            order = sorted(
                pool.nodes,
                key=lambda n: (
                    len(self.nodes[n].pods) if n in self.nodes else 0,
                    -pool.nodes.index(n),
                ),
            )
            for name in order[: len(pool.nodes) - desired]:
                self.store.delete(NODES.name, "", name)
        return pool

    def _provisioned(self, name: str) -> None:
        self.provisioning.pop(name, None)
        self.set_node_ready(name, True)

    def delete_node(self, name: str) -> Obj | None:
        node = self.store.get(NODES.name, "", name)
        if node is None:
            return None
        pool = self.pools.get((node["metadata"].get("labels") or {}).get(POOL_LABEL, ""))
        if pool is not None and name in pool.nodes:
            pool.desired = max(0, pool.desired - 1)
        return self.store.delete(NODES.name, "", name)

    def pool_view(self, pool: Pool) -> Obj:
        node_seconds = pool.node_seconds(time.time())
        price = pool.price_per_hour
        return {
            "name": pool.name,
            "min": pool.min,
            "max": pool.max,
            "desired": pool.desired,
            "current": len(pool.nodes),
            "ready": sum(1 for n in pool.nodes if n in self.nodes and self.nodes[n].ready),
            "cpu": pool.cpu,
            "memory": pool.memory,
            "nodes": list(pool.nodes),
            # The node ledger: every node from launch (boot included) until removed.
            "price_per_hour": pool.price_per_hour,
            "node_seconds": round(node_seconds, 3),
            "cost": None if price is None else round(node_seconds / 3600 * price, 6),
        }

    # ---- serverless capacity -------------------------------------------------------------
    def serverless_report(self) -> Obj | None:
        capacity = self.serverless
        if capacity is None:
            return None
        state = self.nodes.get(capacity.node_name)
        return capacity.report(
            ready=state is not None and state.ready,
            pods=len(state.pods) if state else 0,
            cpu_used=state.cpu_used if state else 0,
            memory_used=state.memory_used if state else 0,
        )

    def set_serverless_exhausted(self, exhausted: bool) -> None:
        assert self.serverless is not None
        self.serverless.exhausted = exhausted
        if not exhausted:
            self.scheduler.kick(0.0)

    # ---- deletion -----------------------------------------------------------------------
    def delete_pod(self, namespace: str, name: str, grace: int | None) -> Obj | None:
        """Delete a pod the way the API does: graceful when it runs on a node."""
        pod = self.store.get(PODS.name, namespace, name)
        if pod is None:
            return None
        spec = pod.get("spec") or {}
        if grace is None:
            grace = int(spec.get("terminationGracePeriodSeconds", 30))
        phase = (pod.get("status") or {}).get("phase")
        if grace <= 0 or not spec.get("nodeName") or phase in TERMINAL:
            return self.store.delete(PODS.name, namespace, name)
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            if grace >= int(meta.get("deletionGracePeriodSeconds") or 0):
                return pod
        stamp = now_iso(time.time() + grace)

        def mark(obj: Obj) -> None:
            obj["metadata"]["deletionTimestamp"] = stamp
            obj["metadata"]["deletionGracePeriodSeconds"] = grace

        marked = self.store.mutate(PODS.name, namespace, name, mark)
        if marked is not None:
            for container in spec.get("containers") or []:
                self.events.record(
                    marked,
                    NORMAL,
                    "Killing",
                    f"Stopping container {container['name']}",
                    "kubelet",  # noqa: E501
                )
        return marked

    def delete_job(self, namespace: str, name: str, policy: str) -> tuple[Obj, bool]:
        return self.gc.delete_job(namespace, name, policy)

    def delete_namespace(self, name: str) -> Obj | None:
        for rs in self.store.resources.values():
            if not rs.rt.namespaced:
                continue
            for entry in list(rs.entries(name)):
                meta = entry.obj["metadata"]
                self.store.delete(rs.rt.name, meta["namespace"], meta["name"])
        return self.store.delete(NAMESPACES.name, "", name)

    # ---- views -----------------------------------------------------------------------------
    def summary(self, url: str) -> Obj:
        pods = self.store[PODS.name]
        return {
            "name": self.name,
            "provider": self.spec.provider,
            "location": self.spec.location,
            "role": self.spec.role,
            "url": url,
            **self.faults.describe(),
            "nodes": len(self.nodes),
            "ready_nodes": sum(1 for n in self.nodes.values() if n.ready),
            "pods": pods.count,
            "jobs": self.store[JOBS.name].count,
            "watches": len(self.store.all_watchers()),
            "resource_version": self.store.rv,
        }

    def object_counts(self) -> dict[str, int]:
        return {name: rs.count for name, rs in self.store.resources.items()}

    async def close(self) -> None:
        for timer in self.provisioning.values():
            timer.cancel()
        await self.kubelet.pause()
        for task in list(self.tasks):
            task.cancel()
