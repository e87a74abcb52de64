"""The disruption controller: PodDisruptionBudget status from the pods it selects."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from kubesim.protocols import PdbCluster
from kubesim.resources import PDBS, PODS
from kubesim.selectors import LabelSelector
from kubesim.store import DELETED
from kubesim.types import Obj
from kubesim.util import now_iso

log = logging.getLogger(__name__)


def _pod_healthy(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []  # noqa: E501
    )


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = float(value[:-1]) / 100.0 * total
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


class PdbController:
    def __init__(self, cluster: PdbCluster) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.dirty_namespaces: set[str] = set()
        self._handle: asyncio.Handle | None = None
        self.store.listen(PDBS.name, self._on_pdb)
        self.store.listen(PODS.name, self._on_pod)

    def _mark(self, namespace: str) -> None:
        if not self.store[PDBS.name].by_ns.get(namespace):
            return
        self.dirty_namespaces.add(namespace)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._drain)

    def _on_pdb(self, type_: str, pdb: Obj, prev: Obj | None) -> None:
        if type_ != DELETED and (prev is None or prev.get("spec") != pdb.get("spec")):
            self._mark(pdb["metadata"]["namespace"])

    def _on_pod(self, type_: str, pod: Obj, prev: Obj | None) -> None:
        self._mark(pod["metadata"]["namespace"])

    def _drain(self) -> None:
        self._handle = None
        namespaces, self.dirty_namespaces = self.dirty_namespaces, set()
        for namespace in namespaces:
            for entry in list(self.store[PDBS.name].entries(namespace)):
                try:
                    self.sync(namespace, entry.obj["metadata"]["name"])
                except Exception:
                    log.exception("pdb sync failed")

    def matching_pods(self, pdb: Obj) -> list[Obj]:
        selector = LabelSelector.from_label_selector((pdb.get("spec") or {}).get("selector"))
        if selector.empty:
            return []
        namespace = pdb["metadata"]["namespace"]
        return [
            e.obj
            for e in self.store[PODS.name].entries(namespace)
            if selector.matches(e.obj["metadata"].get("labels"))
            and (e.obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]

    def compute(self, pdb: Obj) -> Obj:
        pods = self.matching_pods(pdb)
        spec = pdb.get("spec") or {}
        expected = len(pods)
        healthy = sum(1 for p in pods if _pod_healthy(p))
        if spec.get("minAvailable") is not None:
            desired = _scaled(spec["minAvailable"], expected, round_up=True)
        elif spec.get("maxUnavailable") is not None:
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, round_up=True))
        else:
            desired = 0
        allowed = max(0, healthy - desired)
        old = pdb.get("status") or {}
        stamp = now_iso()
        generation = pdb["metadata"].get("generation", 1)
        value = "True" if allowed > 0 else "False"
        previous = next(
            (c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None
        )  # noqa: E501
        condition = {
            "type": "DisruptionAllowed",
            "status": value,
            "observedGeneration": generation,
            "lastTransitionTime": previous["lastTransitionTime"]
            if previous and previous.get("status") == value
            else stamp,
            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
            "message": "",
        }
        status: Obj = {
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [condition],
        }
        if old.get("disruptedPods"):
            # Evicted pods stay listed until they are gone, as the disruption controller does.
            namespace = pdb["metadata"]["namespace"]
            still_there = {
                name: stamp
                for name, stamp in old["disruptedPods"].items()
                if self.store.get(PODS.name, namespace, name) is not None
            }
            if still_there:
                status["disruptedPods"] = still_there
        return status

    def sync(self, namespace: str, name: str) -> Obj | None:
        pdb = self.store.get(PDBS.name, namespace, name)
        if pdb is None:
            return None
        status = self.compute(pdb)
        if status == pdb.get("status"):
            return pdb

        def apply(obj: Obj) -> None:
            obj["status"] = status

        return self.store.mutate(PDBS.name, namespace, name, apply)
