"""When each Job completed in the cluster, seen by an independent watch of every region.

A Job's `status.completionTime` has one-second resolution (metav1.Time), too coarse for
a sub-second latency, so the bench watches the Jobs itself (list, then watch from the
resourceVersion, raw JSON) and stamps the moment the `Complete` or `Failed` condition
first arrives with its own wall clock (time.time(), the same clock as the Temporal
server's and the engine's timestamps on this machine). The delivery delay of a local
watch is a few milliseconds; that is the resolution of this figure.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from kubernetes import client, config, watch

from meridian.kube.labels import LABEL_TASK_ID, MANAGED_SELECTOR

FINISHED = ("Complete", "Failed")


def _finished(job: dict[str, Any]) -> bool:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in FINISHED and cond.get("status") == "True":
            return True
    return False


class JobCompletionWatcher:
    """`completed_at[job_name]` = wall time the Job was first seen finished."""

    def __init__(self, kubeconfig: str, regions: list[str], namespace: str | None = None):
        """`namespace` None: every namespace (tasks run in their business unit's)."""
        self.kubeconfig = kubeconfig
        self.regions = regions
        self.namespace = namespace
        self.completed_at: dict[str, float] = {}
        self.task_of: dict[str, str] = {}
        self.first_seen: dict[str, float] = {}
        self._task_done: dict[str, float] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _api(self, region: str) -> client.BatchV1Api:
        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=self.kubeconfig,
            context=region,
            client_configuration=cfg,
            persist_config=False,
        )
        return client.BatchV1Api(client.ApiClient(cfg))

    def _note(self, job: dict[str, Any], now: float) -> None:
        meta = job.get("metadata") or {}
        name = str(meta.get("name"))
        with self._lock:
            self.task_of.setdefault(name, str((meta.get("labels") or {}).get(LABEL_TASK_ID)))
            self.first_seen.setdefault(name, now)
            if _finished(job) and name not in self.completed_at:
                self.completed_at[name] = now
                self._task_done.setdefault(self.task_of[name], now)

    def _run(self, region: str) -> None:
        api = self._api(region)
        # The API's own methods (the watch reads their docstrings), not wrappers.
        lister: Any
        where: tuple[str, ...]
        lister, where = (
            (api.list_job_for_all_namespaces, ())
            if self.namespace is None
            else (api.list_namespaced_job, (self.namespace,))
        )
        resource_version = ""
        while not self._stop.is_set():
            try:
                if not resource_version:
                    listed = lister(*where, label_selector=MANAGED_SELECTOR, _preload_content=False)
                    data = json.loads(listed.data)
                    now = time.time()
                    for job in data.get("items") or []:
                        self._note(job, now)
                    resource_version = data["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    lister,
                    *where,
                    label_selector=MANAGED_SELECTOR,
                    resource_version=resource_version,
                    timeout_seconds=2,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                )
                for event in stream:
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        resource_version = ""  # 410 Gone or similar: list again
                        break
                    resource_version = (obj.get("metadata") or {}).get(
                        "resourceVersion", resource_version
                    )
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._note(obj, time.time())
                    if self._stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - a namespace not there yet, a dropped stream
                resource_version = ""
                self._stop.wait(0.2)

    def start(self) -> JobCompletionWatcher:
        for region in self.regions:
            thread = threading.Thread(target=self._run, args=(region,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def completion(self, job_name: str | None) -> float | None:
        if job_name is None:
            return None
        with self._lock:
            return self.completed_at.get(job_name)

    def completion_of_task(self, task_id: str) -> float | None:
        """When the task's first Job finished (the bench's tasks run one attempt)."""
        with self._lock:
            return self._task_done.get(task_id)

    def overlapping_tasks(self) -> set[str]:
        """Tasks with two Jobs alive at once (seen created before the other completed):
        two live copies, which fencing must never allow."""
        spans: dict[str, list[tuple[float, float]]] = {}
        with self._lock:
            for name, task in self.task_of.items():
                end = self.completed_at.get(name, float("inf"))
                spans.setdefault(task, []).append((self.first_seen[name], end))
        overlapping = set()
        for task, jobs in spans.items():
            jobs.sort()
            if any(later[0] < earlier[1] for earlier, later in zip(jobs, jobs[1:], strict=False)):
                overlapping.add(task)
        return overlapping

    def completed_jobs_per_task(self) -> dict[str, int]:
        """How many Jobs of each task ran to the end: more than one is work done twice."""
        counts: dict[str, int] = {}
        with self._lock:
            for name in self.completed_at:
                task = self.task_of.get(name, "")
                counts[task] = counts.get(task, 0) + 1
        return counts
