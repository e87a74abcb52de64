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

from kubesim import podsecurity
from kubesim.admission import CONTROLLER_UID_LABELS, qos_class
from kubesim.events import NORMAL, WARNING
from kubesim.protocols import JobCluster
from kubesim.resources import JOBS, NAMESPACES, PODS
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


# A Job's finishing (reason, message): its conditions carry them.
_COMPLETED = ("CompletionsReached", "Reached expected number of succeeded pods")
_BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
_DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")


@dataclass(slots=True)
class _Sync:
    """One sync of a Job: what it read and what it decided, until the status is written."""

    key: Key
    job: Obj
    ledger: Ledger
    active: list[Obj]  # not finished, not being deleted
    terminating: list[Obj]  # being deleted, not finished
    status: Obj  # a copy of the Job's status, brought up to date
    now: float
    stamp: str
    events: list[tuple[str, str, str]] = field(default_factory=list)  # recorded once written

    @property
    def uid(self) -> str:
        return str(self.job["metadata"]["uid"])


def _phase(pod: Obj) -> str | None:
    phase = (pod.get("status") or {}).get("phase")
    return None if phase is None else str(phase)


def _deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _wanted(spec: Obj, succeeded: int, parallelism: int) -> int:
    """How many pods should be active."""
    completions = spec.get("completions")
    if completions is not None:
        return min(parallelism, int(completions) - succeeded)
    # Work-queue mode: once a pod succeeded, the work is done; no new pods start.
    return parallelism if succeeded == 0 else 0


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
        run = self._observe(key, job)
        was_finished = is_finished(job)
        if was_finished:
            self._delete_pods(run.active, job, quiet=True)
            run.active = []
            self._ttl(job, key)
        elif (job.get("spec") or {}).get("suspend"):
            self._suspend(run)
        else:
            self._progress(run)
        self._write_status(run)
        if is_finished({"status": run.status}) and not was_finished:
            self._ttl({**job, "status": run.status}, key)

    def _observe(self, key: Key, job: Obj) -> _Sync:
        uid = job["metadata"]["uid"]
        ledger = self.ledgers.setdefault(uid, Ledger())
        pods = self._pods_of(key[0], uid)
        active = [p for p in pods if _phase(p) not in TERMINAL and not _deleting(p)]
        terminating = [p for p in pods if _deleting(p) and _phase(p) not in TERMINAL]
        status = clone(job.get("status") or {})
        now = time.time()
        return _Sync(key, job, ledger, active, terminating, status, now, now_iso(now))

    def _suspend(self, run: _Sync) -> None:
        if run.active:
            self._delete_pods(run.active, run.job)
            run.active = []
        if not _has_condition(run.status, "Suspended", "True"):
            _upsert(run.status, _condition("Suspended", "JobSuspended", "Job suspended", run.stamp))
            run.events.append((NORMAL, "Suspended", "Job suspended"))

    def _progress(self, run: _Sync) -> None:
        """A Job that is neither finished nor suspended: finish it, or run its pods."""
        self._mark_started(run)
        spec = run.job.get("spec") or {}
        failed = self._failures(run)
        succeeded = len(run.ledger.succeeded)
        started = parse_iso(run.status["startTime"])
        parallelism = int(spec.get("parallelism", 1) or 0)
        outcome = self._outcome(run, spec, succeeded, failed, started)
        if outcome == _COMPLETED:
            self._complete(run)
        elif outcome is not None:
            self._fail(run, *outcome)
        else:
            deadline = spec.get("activeDeadlineSeconds")
            if deadline is not None:
                # Wake up just past the deadline: no pod event may come to trigger a sync.
                wake = started + float(deadline) - run.now + 0.01
                self._timer(run.uid, "deadline", wake, run.key)
            self._create_or_remove_pods(run, _wanted(spec, succeeded, parallelism), failed)

    def _mark_started(self, run: _Sync) -> None:
        if _has_condition(run.status, "Suspended", "True"):
            _upsert(
                run.status,
                _condition("Suspended", "JobResumed", "Job resumed", run.stamp, "False"),
            )
            # activeDeadlineSeconds counts from the resume: time suspended does not count.
            run.status["startTime"] = run.stamp
            run.events.append((NORMAL, "Resumed", "Job resumed"))
        run.status.setdefault("startTime", run.stamp)

    @staticmethod
    def _failures(run: _Sync) -> int:
        failed = len(run.ledger.failed)
        spec = run.job.get("spec") or {}
        if spec.get("template", {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            # Containers restarted in place never fail their pod, yet count against
            # backoffLimit, as they do in a real cluster.
            failed += sum(
                int(cs.get("restartCount", 0))
                for p in run.active
                for cs in (p.get("status") or {}).get("containerStatuses") or []
            )
        return failed

    @staticmethod
    def _outcome(
        run: _Sync, spec: Obj, succeeded: int, failed: int, started: float
    ) -> tuple[str, str] | None:
        """The (reason, message) the Job finishes with now, or None if it runs on."""
        completions = spec.get("completions")
        if completions is not None:
            complete = succeeded >= int(completions)
        else:
            # Work-queue mode: done once a pod succeeded and the others have stopped.
            complete = succeeded >= 1 and not run.active
        if complete:
            return _COMPLETED
        backoff_limit = spec.get("backoffLimit")
        if backoff_limit is not None and failed > int(backoff_limit):
            return _BACKOFF_LIMIT_EXCEEDED
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and run.now - started >= float(deadline):
            return _DEADLINE_EXCEEDED
        return None

    def _complete(self, run: _Sync) -> None:
        self._delete_pods(run.active, run.job, quiet=True)
        run.active = []
        reason, message = _COMPLETED
        _upsert(run.status, _condition("SuccessCriteriaMet", reason, message, run.stamp))
        _upsert(run.status, _condition("Complete", reason, message, run.stamp))
        run.status["completionTime"] = run.stamp
        run.events.append((NORMAL, "Completed", "Job completed"))

    def _fail(self, run: _Sync, reason: str, message: str) -> None:
        """Fail the Job, stopping its active pods.

        Like pkg/controller/job, the active pods it deletes count as failed (its
        trackJobStatusAndRemoveFinalizers: "When the job is considered finished, every
        non-terminated pod is considered failed") and as terminating until they are gone.
        """
        for pod in run.active:
            run.ledger.failed.add(pod["metadata"]["name"])
        self._delete_pods(run.active, run.job, quiet=True)
        # 1.31+ first adds FailureTarget, then Failed once pods are gone; kubesim's pods
        # stop within milliseconds, so both are written together.
        _upsert(run.status, _condition("FailureTarget", reason, message, run.stamp))
        _upsert(run.status, _condition("Failed", reason, message, run.stamp))
        run.events.append((WARNING, reason, message))
        run.terminating += self._still_terminating(run.active)
        run.active = []

    def _still_terminating(self, pods: list[Obj]) -> list[Obj]:
        """The current versions of ``pods`` that are being deleted and have not finished
        (one not bound to a node yet is gone at once)."""
        still = []
        for pod in pods:
            current = self.store.get(
                PODS.name, pod["metadata"]["namespace"], pod["metadata"]["name"]
            )
            if current is not None and _deleting(current) and _phase(current) not in TERMINAL:
                still.append(current)
        return still

    def _create_or_remove_pods(self, run: _Sync, wanted: int, failed: int) -> None:
        missing = wanted - len(run.active)
        if missing > 0:
            wait = self._backoff_wait(run.ledger, failed, run.now)
            if wait > 0:
                self._timer(run.uid, "backoff", wait, run.key)
            else:
                created = (self._create_pod(run.job) for _ in range(missing))
                run.active += [pod for pod in created if pod is not None]
        elif missing < 0:
            # Prefer removing pods that are not running yet, newest first.
            surplus = sorted(run.active, key=lambda p: (_pod_ready(p), p["metadata"]["name"]))
            self._delete_pods(surplus[:-missing], run.job)
            run.active = surplus[-missing:]

    def _backoff_wait(self, ledger: Ledger, failed: int, now: float) -> float:
        base = self.cluster.defaults.job_backoff
        if base <= 0 or failed == 0:
            return 0.0
        delay = min(base * (2 ** (failed - 1)), MAX_BACKOFF)
        return float(ledger.last_failure + delay - now)

    def _write_status(self, run: _Sync) -> None:
        status = run.status

        def set_count(field_name: str, value: int) -> None:
            # active/succeeded/failed are omitempty in the real API; ready/terminating not.
            if value:
                status[field_name] = value
            else:
                status.pop(field_name, None)

        set_count("active", len(run.active))
        set_count("succeeded", len(run.ledger.succeeded))
        set_count("failed", len(run.ledger.failed))
        status["ready"] = sum(1 for p in run.active if _pod_ready(p))
        status["terminating"] = len(run.terminating)
        status["uncountedTerminatedPods"] = {}
        job = run.job
        if status != (job.get("status") or {}):

            def apply(obj: Obj) -> None:
                obj["status"] = status

            updated = self.store.mutate(JOBS.name, run.key[0], run.key[1], apply)
            job = updated or job
        for type_, reason, message in run.events:
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

    def _create_pod(self, job: Obj) -> Obj | None:
        """The Job's next pod; None (and a FailedCreate event) when Pod Security refuses it."""
        meta = job["metadata"]
        template = job["spec"]["template"]
        tmeta = template.get("metadata") or {}
        base = meta["name"][:58]
        name = f"{base}-{random_suffix()}"
        while self.store.get(PODS.name, meta["namespace"], name) is not None:
            name = f"{base}-{random_suffix()}"
        spec = clone(template.get("spec") or {})
        namespace = self.store.get(NAMESPACES.name, "", meta["namespace"])
        refused = podsecurity.refusal(namespace, spec)
        if refused is not None:
            message = f'Error creating: pods "{name}" is forbidden: {refused}'
            self.cluster.events.record(job, WARNING, "FailedCreate", message, "job-controller")
            return None
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
