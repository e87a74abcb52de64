"""The Job controller (batch/v1), following pkg/controller/job's observable behaviour.

It keeps, per Job, a ledger of the pods it has counted as succeeded or failed, so that
counts survive pod deletion the way finalizer-based job tracking makes them survive in
a real cluster. Work is queued per Job and drained on the next loop iteration, so a
burst of pod updates costs one sync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from kubesim.admission import CONTROLLER_UID_LABELS, qos_class
from kubesim.events import NORMAL, WARNING
from kubesim.protocols import JobCluster
from kubesim.resources import JOBS, PODS
from kubesim.store import DELETED
from kubesim.types import Key, Obj
from kubesim.util import clone, new_uid, now_iso, parse_iso, random_suffix

log = logging.getLogger(__name__)

TERMINAL = ("Succeeded", "Failed")
MAX_BACKOFF = 360.0


@dataclass(slots=True)
class Ledger:
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    last_failure: float = 0.0


def job_uid_of(pod: Obj) -> str | None:
    labels = pod["metadata"].get("labels") or {}
    for label in CONTROLLER_UID_LABELS:
        if label in labels:
            return str(labels[label])
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def is_finished(job: Obj) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def _pod_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _condition(type_: str, reason: str, message: str, stamp: str, status: str = "True") -> Obj:
    return {
        "type": type_,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


class JobController:
    def __init__(self, cluster: JobCluster) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.queue: dict[Key, None] = {}
        self._drain_handle: asyncio.Handle | None = None
        self.ledgers: dict[str, Ledger] = {}
        self.uid_keys: dict[str, Key] = {}
        self.expected_deletions: set[Key] = set()
        self.timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.store.listen(JOBS.name, self._on_job)
        self.store.listen(PODS.name, self._on_pod)

    # ---- triggers -----------------------------------------------------------------
    def enqueue(self, key: Key) -> None:
        self.queue[key] = None
        if self._drain_handle is None:
            self._drain_handle = asyncio.get_running_loop().call_soon(self._drain)

    def _on_job(self, type_: str, job: Obj, prev: Obj | None) -> None:
        meta = job["metadata"]
        key = (meta["namespace"], meta["name"])
        uid = meta["uid"]
        if type_ == DELETED:
            self.uid_keys.pop(uid, None)
            self.ledgers.pop(uid, None)
            for timer_key in [k for k in self.timers if k[0] == uid]:
                self.timers.pop(timer_key).cancel()
            return
        self.uid_keys[uid] = key
        if (
            prev is not None
            and prev.get("spec") == job.get("spec")
            and (prev["metadata"].get("deletionTimestamp") == meta.get("deletionTimestamp"))
        ):
            return  # our own status write: nothing new to act on
        self.enqueue(key)

    def _on_pod(self, type_: str, pod: Obj, prev: Obj | None) -> None:
        uid = job_uid_of(pod)
        if uid is None:
            return
        meta = pod["metadata"]
        pod_key = (meta["namespace"], meta["name"])
        if uid not in self.uid_keys:
            # An orphaned pod whose Job is gone: nothing counts it any more.
            self.expected_deletions.discard(pod_key)
            return
        ledger = self.ledgers.setdefault(uid, Ledger())
        phase = (pod.get("status") or {}).get("phase")
        if type_ == DELETED:
            expected = pod_key in self.expected_deletions
            self.expected_deletions.discard(pod_key)
            if phase not in TERMINAL and not expected and meta["name"] not in ledger.succeeded:
                # A pod removed before it finished counts as failed (job tracking).
                ledger.failed.add(meta["name"])
                ledger.last_failure = time.time()
        elif phase == "Succeeded" and meta["name"] not in ledger.failed:
            # A pod already counted as failed (terminated for a failure condition) stays
            # failed, as its job-tracking finalizer is gone in a real cluster.
            ledger.succeeded.add(meta["name"])
        elif phase == "Failed" and meta["name"] not in ledger.failed:
            ledger.failed.add(meta["name"])
            ledger.last_failure = time.time()
        key = self.uid_keys.get(uid)
        if key is not None:
            self.enqueue(key)

    def _drain(self) -> None:
        self._drain_handle = None
        keys, self.queue = list(self.queue), {}
        for key in keys:
            try:
                self.sync(key)
            except Exception:  # keep the controller alive, as a real one would requeue
                log.exception("job sync failed for %s/%s", *key)

    def _timer(self, uid: str, kind: str, delay: float, key: Key) -> None:
        existing = self.timers.pop((uid, kind), None)
        if existing is not None:
            existing.cancel()

        def fire() -> None:
            self.timers.pop((uid, kind), None)
            if kind == "ttl":
                self._expire(key, uid)
            else:
                self.enqueue(key)

        self.timers[(uid, kind)] = asyncio.get_running_loop().call_later(max(delay, 0.0), fire)

    # ---- durable state (kubesim.state) ----------------------------------------------------
    def capture(self) -> Obj:
        """The ledgers (counts that outlive deleted pods) and the deletions we asked for."""
        return {
            "ledgers": {
                uid: [sorted(ledger.succeeded), sorted(ledger.failed), ledger.last_failure]
                for uid, ledger in self.ledgers.items()
                if ledger.succeeded or ledger.failed
            },
            "expected_deletions": [list(key) for key in self.expected_deletions],
        }

    def restore(self, saved: Obj) -> None:
        """Called before the pods are replayed, which add what the ledgers lack; the Jobs'
        replay has queued a sync of each, which re-arms deadline, backoff and TTL timers."""
        for uid, (succeeded, failed, last_failure) in (saved.get("ledgers") or {}).items():
            if uid in self.uid_keys:
                self.ledgers[uid] = Ledger(set(succeeded), set(failed), float(last_failure))
        for ns, name in saved.get("expected_deletions") or []:
            self.expected_deletions.add((ns, name))

    def resume(self) -> None:
        """After the pods were replayed: a finished Job with no pod left to stop needs no
        sync (its status is as saved), only its TTL timer."""
        rs = self.store[PODS.name]
        for key in list(self.queue):
            job = self.store.get(JOBS.name, *key)
            if job is None or not is_finished(job) or job["metadata"].get("deletionTimestamp"):
                continue
            uid = job["metadata"]["uid"]
            if rs.keys_with_label("batch.kubernetes.io/controller-uid", uid):
                pods = self._pods_of(key[0], uid)
                if any((p.get("status") or {}).get("phase") not in TERMINAL for p in pods):
                    continue
            del self.queue[key]
            self._ttl(job, key)

    # ---- reconcile ----------------------------------------------------------------------
    def sync(self, key: Key) -> None:
        job = self.store.get(JOBS.name, *key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        uid = job["metadata"]["uid"]
        spec = job.get("spec") or {}
        ledger = self.ledgers.setdefault(uid, Ledger())
        pods = self._pods_of(key[0], uid)
        active = [
            p
            for p in pods
            if (p.get("status") or {}).get("phase") not in TERMINAL
            and not p["metadata"].get("deletionTimestamp")
        ]
        terminating = [
            p
            for p in pods
            if p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in TERMINAL
        ]
        status = clone(job.get("status") or {})
        now = time.time()
        stamp = now_iso(now)
        events: list[tuple[str, str, str]] = []
        finished = is_finished(job)

        if finished:
            self._delete_pods(active, job, quiet=True)
            active = []
            self._ttl(job, key)
        elif spec.get("suspend"):
            if active:
                self._delete_pods(active, job)
                active = []
            if not _has_condition(status, "Suspended", "True"):
                _upsert(status, _condition("Suspended", "JobSuspended", "Job suspended", stamp))
                events.append((NORMAL, "Suspended", "Job suspended"))
        else:
            if _has_condition(status, "Suspended", "True"):
                _upsert(
                    status, _condition("Suspended", "JobResumed", "Job resumed", stamp, "False")
                )  # noqa: E501
                status["startTime"] = stamp
                events.append((NORMAL, "Resumed", "Job resumed"))
            status.setdefault("startTime", stamp)
            failed = len(ledger.failed)
            if spec.get("template", {}).get("spec", {}).get("restartPolicy") == "OnFailure":
                failed += sum(
                    int(cs.get("restartCount", 0))
                    for p in active
                    for cs in (p.get("status") or {}).get("containerStatuses") or []
                )
            succeeded = len(ledger.succeeded)
            backoff_limit = spec.get("backoffLimit")
            deadline = spec.get("activeDeadlineSeconds")
            started = parse_iso(status["startTime"])
            completions = spec.get("completions")
            parallelism = int(spec.get("parallelism", 1) or 0)
            if completions is not None:
                complete = succeeded >= int(completions)
            else:
                complete = succeeded >= 1 and not active
            if complete:
                self._delete_pods(active, job, quiet=True)
                active = []
                _upsert(
                    status,
                    _condition(
                        "SuccessCriteriaMet",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                        stamp,
                    ),
                )
                _upsert(
                    status,
                    _condition(
                        "Complete",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                        stamp,
                    ),
                )
                status["completionTime"] = stamp
                events.append((NORMAL, "Completed", "Job completed"))
            elif backoff_limit is not None and failed > int(backoff_limit):
                terminating += self._fail(
                    job,
                    status,
                    active,
                    ledger,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    stamp,
                    events,
                )
                active = []
            elif deadline is not None and now - started >= float(deadline):
                terminating += self._fail(
                    job,
                    status,
                    active,
                    ledger,
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    stamp,
                    events,
                )
                active = []
            else:
                if deadline is not None:
                    self._timer(uid, "deadline", started + float(deadline) - now + 0.01, key)
                if completions is not None:
                    wanted = min(parallelism, int(completions) - succeeded)
                else:
                    wanted = parallelism if succeeded == 0 else 0
                missing = wanted - len(active)
                if missing > 0:
                    wait = self._backoff_wait(ledger, failed, now)
                    if wait > 0:
                        self._timer(uid, "backoff", wait, key)
                    else:
                        active += [self._create_pod(job) for _ in range(missing)]
                elif missing < 0:
                    # Prefer removing pods that are not running yet, newest first.
                    surplus = sorted(active, key=lambda p: (_pod_ready(p), p["metadata"]["name"]))
                    self._delete_pods(surplus[:-missing], job)
                    active = surplus[-missing:]
        self._write_status(key, job, status, active, terminating, ledger, events)
        if is_finished({"status": status}) and not finished:
            self._ttl({**job, "status": status}, key)

    def _backoff_wait(self, ledger: Ledger, failed: int, now: float) -> float:
        base = self.cluster.defaults.job_backoff
        if base <= 0 or failed == 0:
            return 0.0
        delay = min(base * (2 ** (failed - 1)), MAX_BACKOFF)
        return float(ledger.last_failure + delay - now)

    def _fail(
        self,
        job: Obj,
        status: Obj,
        active: list[Obj],
        ledger: Ledger,
        reason: str,
        message: str,
        stamp: str,
        events: list[tuple[str, str, str]],
    ) -> list[Obj]:
        """Fail the Job; returns the pods it stopped that are still terminating.

        Like pkg/controller/job, the active pods it deletes count as failed (its
        trackJobStatusAndRemoveFinalizers: "When the job is considered finished, every
        non-terminated pod is considered failed") and as terminating until they are gone.
        """
        for pod in active:
            ledger.failed.add(pod["metadata"]["name"])
        self._delete_pods(active, job, quiet=True)
        # 1.31+ first adds FailureTarget, then Failed once pods are gone; kubesim's pods
        # stop within milliseconds, so both are written together.
        _upsert(status, _condition("FailureTarget", reason, message, stamp))
        _upsert(status, _condition("Failed", reason, message, stamp))
        events.append((WARNING, reason, message))
        still = []
        for pod in active:
            current = self.store.get(
                PODS.name, pod["metadata"]["namespace"], pod["metadata"]["name"]
            )
            if (
                current is not None
                and current["metadata"].get("deletionTimestamp")
                and ((current.get("status") or {}).get("phase") not in TERMINAL)
            ):
                still.append(current)
        return still

    def _write_status(
        self,
        key: Key,
        job: Obj,
        status: Obj,
        active: list[Obj],
        terminating: list[Obj],
        ledger: Ledger,
        events: list[tuple[str, str, str]],
    ) -> None:
        def set_count(field_name: str, value: int) -> None:
            # active/succeeded/failed are omitempty in the real API; ready/terminating not.
            if value:
                status[field_name] = value
            else:
                status.pop(field_name, None)

        set_count("active", len(active))
        set_count("succeeded", len(ledger.succeeded))
        set_count("failed", len(ledger.failed))
        status["ready"] = sum(1 for p in active if _pod_ready(p))
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}
        if status != (job.get("status") or {}):

            def apply(obj: Obj) -> None:
                obj["status"] = status

            updated = self.store.mutate(JOBS.name, key[0], key[1], apply)
            job = updated or job
        for type_, reason, message in events:
            self.cluster.events.record(job, type_, reason, message, "job-controller")

    def _pods_of(self, namespace: str, uid: str) -> list[Obj]:
        rs = self.store[PODS.name]
        keys = rs.keys_with_label("batch.kubernetes.io/controller-uid", uid)
        pods = []
        for pod_key in keys:
            if pod_key[0] != namespace:
                continue
            entry = rs.get(*pod_key)
            if entry is not None:
                pods.append(entry.obj)
        return pods

    def _create_pod(self, job: Obj) -> Obj:
        meta = job["metadata"]
        template = job["spec"]["template"]
        tmeta = template.get("metadata") or {}
        base = meta["name"][:58]
        name = f"{base}-{random_suffix()}"
        while self.store.get(PODS.name, meta["namespace"], name) is not None:
            name = f"{base}-{random_suffix()}"
        spec = clone(template.get("spec") or {})
        pod: Obj = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "generateName": f"{base}-",
                "namespace": meta["namespace"],
                "uid": new_uid(),
                "creationTimestamp": now_iso(),
                "generation": 1,
                "labels": clone(tmeta.get("labels") or {}),
                "annotations": clone(tmeta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": qos_class(spec)},
        }
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        created = self.store.create(PODS.name, pod)
        self.cluster.events.record(
            job, NORMAL, "SuccessfulCreate", f"Created pod: {name}", "job-controller"
        )  # noqa: E501
        return created

    def _delete_pods(self, pods: list[Obj], job: Obj, quiet: bool = False) -> None:
        for pod in pods:
            pod_key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
            self.expected_deletions.add(pod_key)
            self.cluster.delete_pod(pod_key[0], pod_key[1], None)
            if not quiet:
                self.cluster.events.record(
                    job, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod_key[1]}", "job-controller"
                )

    def _ttl(self, job: Obj, key: Key) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        uid = job["metadata"]["uid"]
        if (uid, "ttl") in self.timers:
            return
        finished_at = time.time()
        for condition in (job.get("status") or {}).get("conditions") or []:
            if (
                condition.get("type") in ("Complete", "Failed")
                and condition.get("status") == "True"
            ):  # noqa: E501
                finished_at = parse_iso(condition["lastTransitionTime"])
        self._timer(uid, "ttl", finished_at + float(ttl) - time.time(), key)

    def _expire(self, key: Key, uid: str) -> None:
        job = self.store.get(JOBS.name, *key)
        if job is not None and job["metadata"]["uid"] == uid:
            self.cluster.delete_job(key[0], key[1], "Background")


def _has_condition(status: Obj, type_: str, value: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == value for c in status.get("conditions") or []
    )


def _upsert(status: Obj, condition: Obj) -> None:
    conditions = status.setdefault("conditions", [])
    for i, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            if existing.get("status") == condition["status"]:
                condition["lastTransitionTime"] = existing.get(
                    "lastTransitionTime", condition["lastTransitionTime"]
                )
            conditions[i] = condition
            return
    conditions.append(condition)
