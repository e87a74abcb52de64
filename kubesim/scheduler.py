"""The scheduler: binds pending pods to Ready, schedulable nodes with room for them.

Event-driven: a pod joins the queue when created unbound; a pass runs soon after, and
again whenever capacity frees (a pod ends, a node turns Ready or is uncordoned or
added). Unschedulable pods get ``PodScheduled=False, reason=Unschedulable`` and a
FailedScheduling event once, then wait for capacity as kube-scheduler's unschedulable
queue does.
"""

from __future__ import annotations

import asyncio
import logging

from kubesim.config import cpu_millis, memory_bytes
from kubesim.events import NORMAL, WARNING
from kubesim.nodes import NodeState
from kubesim.protocols import SchedulerCluster
from kubesim.resources import PODS
from kubesim.store import DELETED
from kubesim.types import Key, Obj
from kubesim.util import now_iso

log = logging.getLogger(__name__)
RETRY_INTERVAL = 0.05
PASS_COST_PER_POD = 2e-5  # seconds of delay per queued pod between capacity-driven passes
# Where a pod may go among the serverless (virtual) nodes: the one whose cloud captures it
# (then nothing else), and every one that admits it.
Route = tuple[str | None, frozenset[str]]
NO_ROUTE: Route = (None, frozenset())
# A virtual node scores below any real node: a pod that may use both (CCI's `auto`) takes
# a node while one has room, as the clouds' own burst modes do.
VIRTUAL_SCORE = -0.5


def pod_requests(pod: Obj) -> tuple[int, int]:
    cpu = memory = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        if "cpu" in requests:
            cpu += cpu_millis(requests["cpu"])
        if "memory" in requests:
            memory += memory_bytes(requests["memory"])
    return cpu, memory


class Scheduler:
    def __init__(self, cluster: SchedulerCluster) -> None:
        self.cluster = cluster
        self.queue: dict[Key, None] = {}  # insertion-ordered set: FIFO by arrival
        self.requests: dict[Key, tuple[int, int]] = {}  # parsed once per queued pod
        self.unschedulable_reported: dict[Key, str] = {}
        self._pass_handle: asyncio.Handle | asyncio.TimerHandle | None = None
        cluster.store.listen(PODS.name, self._on_pod)

    def _on_pod(self, type_: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        if type_ == DELETED:
            self.queue.pop(key, None)
            self.requests.pop(key, None)
            self.unschedulable_reported.pop(key, None)
            return
        spec = pod.get("spec") or {}
        if (
            not spec.get("nodeName")
            and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
            and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
            and not meta.get("deletionTimestamp")
        ):
            if key not in self.queue:
                self.queue[key] = None
                self.kick(0.0)

    def restore(self) -> None:
        """Queued pods already reported Unschedulable are not reported again."""
        for key in self.queue:
            pod = self.cluster.store.get(PODS.name, *key)
            for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
                if (
                    condition.get("type") == "PodScheduled"
                    and condition.get("reason") == "Unschedulable"
                ):  # noqa: E501
                    self.unschedulable_reported[key] = str(condition.get("message", ""))

    def _requests(self, key: Key, pod: Obj) -> tuple[int, int]:
        requests = self.requests.get(key)
        if requests is None:
            requests = self.requests[key] = pod_requests(pod)
        return requests

    def kick(self, delay: float = RETRY_INTERVAL) -> None:
        """Run a scheduling pass soon; coalesces bursts of triggers into one pass."""
        if self._pass_handle is not None or not self.queue:
            return
        if delay > 0:
            # A long backlog makes each pass costlier: retry it less often.
            delay = max(delay, len(self.queue) * PASS_COST_PER_POD)
        loop = asyncio.get_running_loop()
        if delay <= 0:
            self._pass_handle = loop.call_soon(self._run_pass)
        else:
            self._pass_handle = loop.call_later(delay, self._run_pass)

    def _run_pass(self) -> None:
        self._pass_handle = None
        try:
            self.schedule_pending()
        except Exception:  # a bug here must not stop the cluster's event loop
            log.exception("scheduler pass failed in %s", self.cluster.name)

    def schedule_pending(self) -> None:
        cluster = self.cluster
        candidates = [n for n in cluster.nodes.values() if n.ready and n.schedulable]
        virtual = [n for n in cluster.nodes.values() if n.virtual is not None]
        total_nodes = len(cluster.nodes)
        # Request shapes that found no node in this pass: a pod asking for at least as
        # much with the same node selector (and serverless route) cannot fit either, so a
        # large homogeneous backlog costs O(queue), not O(queue x nodes), per pass.
        failed: list[tuple[int, int, tuple[tuple[tuple[str, str], ...], Route]]] = []
        for key in list(self.queue):
            pod = cluster.store.get(PODS.name, *key)
            spec = (pod or {}).get("spec") or {}
            if pod is None or spec.get("nodeName") or pod["metadata"].get("deletionTimestamp"):
                self.queue.pop(key, None)
                self.requests.pop(key, None)
                continue
            cpu, memory = self._requests(key, pod)
            selector = spec.get("nodeSelector") or {}
            route = self._route(pod, virtual)
            shape = (tuple(sorted(selector.items())), route)
            if any(c <= cpu and m <= memory and s == shape for c, m, s in failed):
                node = None
            else:
                node = self._best_node(candidates, cpu, memory, selector, route)
                if node is None:
                    failed.append((cpu, memory, shape))
            if node is None:
                self._report_unschedulable(key, pod, cpu, memory, selector, total_nodes, route)
                if not any(len(n.pods) < n.pods_max for n in candidates):
                    # No pod slot anywhere: nothing behind this pod fits either.
                    self._report_rest(total_nodes)
                    break
                continue
            self.queue.pop(key, None)
            self.requests.pop(key, None)
            self.unschedulable_reported.pop(key, None)
            self._bind(key, pod, node)

    @staticmethod
    def _route(pod: Obj, virtual: list[NodeState]) -> Route:
        if not virtual:
            return NO_ROUTE
        captured: str | None = None
        allowed: set[str] = set()
        for node in virtual:
            capacity = node.virtual
            assert capacity is not None
            if capacity.captures(pod):
                captured = node.name
                allowed.add(node.name)
            elif capacity.admits(pod, node.labels, node.taints):
                allowed.add(node.name)
        return captured, frozenset(allowed)

    @staticmethod
    def _virtual_fits(node: NodeState, cpu: int, memory: int, route: Route) -> bool:
        capacity = node.virtual
        if capacity is None or node.name not in route[1] or capacity.exhausted:
            return False
        size = capacity.billed(cpu, memory)
        return size is not None and node.fits(size.cpu_millis, size.memory_bytes)

    @classmethod
    def _best_node(
        cls,
        candidates: list[NodeState],
        cpu: int,
        memory: int,
        selector: dict[str, str],
        route: Route = NO_ROUTE,
    ) -> NodeState | None:
        best: NodeState | None = None
        best_score = -1.0
        for node in candidates:
            if node.virtual is not None:
                if cls._virtual_fits(node, cpu, memory, route) and VIRTUAL_SCORE > best_score:
                    best, best_score = node, VIRTUAL_SCORE
                continue
            if route[0] is not None:
                continue  # the cloud's webhook sends this pod to its serverless node only
            if not node.fits(cpu, memory):
                continue
            if selector and any(node.labels.get(k) != v for k, v in selector.items()):
                continue
            # Spread like the default LeastAllocated scoring: prefer the emptiest node.
            score = (
                (node.cpu - node.cpu_used) / max(node.cpu, 1)
                + (node.memory - node.memory_used) / max(node.memory, 1)
                + (node.pods_max - len(node.pods)) / max(node.pods_max, 1)
            )
            if score > best_score:
                best, best_score = node, score
        return best

    def _bind(self, key: Key, pod: Obj, node: NodeState) -> None:
        stamp = now_iso()

        def bind(obj: Obj) -> None:
            obj["spec"]["nodeName"] = node.name
            status = obj.setdefault("status", {})
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ]  # noqa: E501
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": stamp,
                }
            )
            status["conditions"] = conditions

        bound = self.cluster.store.mutate(PODS.name, key[0], key[1], bind)
        if bound is not None:
            self.cluster.events.record(
                bound,
                NORMAL,
                "Scheduled",
                f"Successfully assigned {key[0]}/{key[1]} to {node.name}",
                "default-scheduler",
            )

    def _report_unschedulable(
        self,
        key: Key,
        pod: Obj,
        cpu: int,
        memory: int,
        selector: dict[str, str],
        total: int,
        route: Route = NO_ROUTE,
    ) -> None:
        # Reported once per pod: re-reporting on every pass would flood a large backlog.
        if key in self.unschedulable_reported:
            return
        message = self._explain(cpu, memory, selector, total, route)
        self.unschedulable_reported[key] = message
        stamp = now_iso()

        def mark(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ]  # noqa: E501
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": stamp,
                    "reason": "Unschedulable",
                    "message": message,
                }
            )
            status["conditions"] = conditions

        marked = self.cluster.store.mutate(PODS.name, key[0], key[1], mark)
        if marked is not None:
            self.cluster.events.record(
                marked, WARNING, "FailedScheduling", message, "default-scheduler"
            )  # noqa: E501

    def _report_rest(self, total: int) -> None:
        for key in list(self.queue):
            if key in self.unschedulable_reported:
                continue
            pod = self.cluster.store.get(PODS.name, *key)
            if pod is not None:
                cpu, memory = self._requests(key, pod)
                selector = (pod.get("spec") or {}).get("nodeSelector") or {}
                virtual = [n for n in self.cluster.nodes.values() if n.virtual is not None]
                route = self._route(pod, virtual)
                self._report_unschedulable(key, pod, cpu, memory, selector, total, route)

    def _explain(
        self,
        cpu: int,
        memory: int,
        selector: dict[str, str],
        total: int,
        route: Route = NO_ROUTE,
    ) -> str:
        """A FailedScheduling message in kube-scheduler's format."""
        reasons: dict[str, int] = {}
        for node in self.cluster.nodes.values():
            if not node.ready:
                reason = "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
            elif node.virtual is not None:
                found = self._explain_virtual(node, cpu, memory, route)
                if found is None:
                    continue
                reason = found
            elif route[0] is not None:
                reason = "node(s) didn't match Pod's node affinity/selector"
            elif not node.schedulable:
                reason = "node(s) were unschedulable"
            elif selector and any(node.labels.get(k) != v for k, v in selector.items()):
                reason = "node(s) didn't match Pod's node affinity/selector"
            elif len(node.pods) >= node.pods_max:
                reason = "Too many pods"
            elif node.cpu_used + cpu > node.cpu:
                reason = "Insufficient cpu"
            elif node.memory_used + memory > node.memory:
                reason = "Insufficient memory"
            else:
                continue
            if reason.startswith("1 node(s) had"):
                reason = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
            reasons[reason] = reasons.get(reason, 0) + 1
        parts = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        if total == 0:
            return "no nodes available to schedule pods"
        tail = (
            f" preemption: 0/{total} nodes are available: {total} Preemption is not helpful for "
            "scheduling."
        )
        return f"0/{total} nodes are available: {parts}.{tail}"

    @staticmethod
    def _explain_virtual(node: NodeState, cpu: int, memory: int, route: Route) -> str | None:
        capacity = node.virtual
        assert capacity is not None
        if not node.schedulable:
            return "node(s) were unschedulable"
        if node.name not in route[1]:
            taint = next(iter(node.taints), None)
            if taint is None:
                return "node(s) didn't match Pod's node affinity/selector"
            return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
        if capacity.exhausted:
            return "node(s) had no serverless quota left"
        size = capacity.billed(cpu, memory)
        if size is None:
            return "node(s) had no serverless pod size large enough"
        if len(node.pods) >= node.pods_max:
            return "Too many pods"
        if node.cpu_used + size.cpu_millis > node.cpu:
            return "Insufficient cpu"
        if node.memory_used + size.memory_bytes > node.memory:
            return "Insufficient memory"
        return None
