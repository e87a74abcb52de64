"""Garbage collection of a Job's pods by deletion propagation policy.

Background deletes the owner at once and its dependents right after; Foreground marks
the owner with a deletionTimestamp and the ``foregroundDeletion`` finalizer, deletes
the dependents and removes the owner when the last one is gone; Orphan strips the
owner reference from the dependents and leaves them running.
"""

from __future__ import annotations

import asyncio

from kubesim.protocols import GcCluster
from kubesim.resources import JOBS, PODS
from kubesim.store import DELETED
from kubesim.types import Key, Obj
from kubesim.util import now_iso

FOREGROUND = "foregroundDeletion"


class GarbageCollector:
    def __init__(self, cluster: GcCluster) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.dependents: dict[str, set[Key]] = {}
        self.foreground: dict[str, Key] = {}  # owner uid -> owner key awaiting dependents
        self.store.listen(PODS.name, self._on_pod)

    def _on_pod(self, type_: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or []}
        before = {
            ref.get("uid") for ref in (prev or {}).get("metadata", {}).get("ownerReferences") or []
        }  # noqa: E501
        if type_ == DELETED:
            owners = set()
        for uid in before - owners:
            deps = self.dependents.get(uid)
            if deps is not None:
                deps.discard(key)
                if not deps:
                    del self.dependents[uid]
                    self._maybe_finish(uid)
        for uid in owners - before:
            if uid:
                self.dependents.setdefault(uid, set()).add(key)

    def _maybe_finish(self, uid: str) -> None:
        owner_key = self.foreground.pop(uid, None)
        if owner_key is not None:
            job = self.store.get(JOBS.name, *owner_key)
            if job is not None and job["metadata"]["uid"] == uid:
                self.store.delete(JOBS.name, *owner_key)

    def restore(self) -> None:
        """Resume foreground deletions of restored Jobs (after the pods were replayed)."""
        loop = asyncio.get_running_loop()
        for entry in list(self.store[JOBS.name].entries()):
            meta = entry.obj["metadata"]
            if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []):
                uid = meta["uid"]
                self.foreground[uid] = (meta["namespace"], meta["name"])
                if not self.dependents.get(uid):
                    loop.call_soon(self._maybe_finish, uid)

    def dependents_of(self, uid: str) -> list[Key]:
        return sorted(self.dependents.get(uid, ()))

    def delete_job(self, namespace: str, name: str, policy: str) -> tuple[Obj, bool]:
        """Delete a Job; returns (object, deleted_now)."""
        job = self.store.get(JOBS.name, namespace, name)
        assert job is not None
        uid = job["metadata"]["uid"]
        dependents = self.dependents_of(uid)
        if policy == "Orphan":
            for key in dependents:

                def orphan(pod: Obj) -> None:
                    refs = [
                        r
                        for r in pod["metadata"].get("ownerReferences") or []
                        if r.get("uid") != uid
                    ]  # noqa: E501
                    if refs:
                        pod["metadata"]["ownerReferences"] = refs
                    else:
                        pod["metadata"].pop("ownerReferences", None)

                self.store.mutate(PODS.name, key[0], key[1], orphan)
            final = self.store.delete(JOBS.name, namespace, name)
            return final or job, True
        if policy == "Foreground" and dependents:
            if job["metadata"].get("deletionTimestamp"):
                return job, False

            def mark(obj: Obj) -> None:
                meta = obj["metadata"]
                meta["deletionTimestamp"] = now_iso()
                meta["deletionGracePeriodSeconds"] = 0
                finalizers = list(meta.get("finalizers") or [])
                if FOREGROUND not in finalizers:
                    finalizers.append(FOREGROUND)
                meta["finalizers"] = finalizers

            marked = self.store.mutate(JOBS.name, namespace, name, mark) or job
            self.foreground[uid] = (namespace, name)
            for key in dependents:
                self.cluster.delete_pod(key[0], key[1], None)
            return marked, False
        final = self.store.delete(JOBS.name, namespace, name)
        for key in dependents:
            self.cluster.delete_pod(key[0], key[1], None)
        return final or job, True
