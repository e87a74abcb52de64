"""Each served region's live pods, kept current by a list and a watch (an informer, as
kube-scheduler keeps one), so that the health probe lists only the nodes.

Listing every live pod of a region on every probe was a third of a busy unit worker's
CPU (at 10,000 tasks, about 5,000 pods parsed a second, every one of them unchanged
since the last time). A watch parses a pod when it changes: a few times in its life.

One reader thread per region, the blocking client, the conventions of the Job watch
(meridian/channels/watch.py): list the live pods of every namespace (the field selector
of `JobGateway.nodes_and_live_pods`), then watch every pod from the list's
resourceVersion with bookmarks; on 410 Gone re-list; on errors back off (capped) and
reconnect from the last resourceVersion seen. The watch has no selector: the cache
decides "live" itself, with the consumers' own `is_live`, so a pod that turns Succeeded
or Failed leaves on its MODIFIED event and nothing depends on how a server reports a pod
leaving a field selector. Events of finished pods the cache does not hold are ignored.

A pod is kept as `slim_pod` cuts it: only what the consumers read, about a third of a
whole pod's memory (a Job's pod from kubesim: 3.3 KB of Python objects against 9.1 KB;
`python -m bench.pod_cache`), so 10,000 pods hold about 33 MB instead of 90.

The cache is synced once a list has landed and while the watch has not been broken for
longer than `stale_seconds`; callers fall back to a fresh list when it is not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meridian.kube.errors import KubeError, KubeGone, translate
from meridian.kube.gateway import LIVE_PODS_SELECTOR
from meridian.kube.watch_stream import (
    Event,
    StreamStats,
    event_error,
    open_watch,
    read_events,
)
from meridian.regions.load import is_live
from meridian.serverless.kinds import ANNOTATION_BILLED_CPU, ANNOTATION_BILLED_MEMORY

if TYPE_CHECKING:
    from meridian.kube.gateway import JobGateway

log = logging.getLogger(__name__)

Pod = dict[str, Any]

# The annotations a consumer reads (`meridian.regions.load.billed_size`). Others can be
# large (an applied manifest) and say nothing about load.
_KEPT_ANNOTATIONS = (ANNOTATION_BILLED_CPU, ANNOTATION_BILLED_MEMORY)
# The one condition a consumer reads (`is_unschedulable`).
_KEPT_CONDITIONS = ("PodScheduled",)


def slim_pod(pod: Pod) -> Pod:
    """What the consumers of a listing's pods read (`compute_load`, `requests_by_node`,
    `is_pending`, `is_unschedulable`, `serverless_usage`, `scaling.observe`), nothing else:
    a pod's name and place, labels, billed-size annotations, owners' kinds, node,
    container requests, phase, scheduling condition and start time. A new consumer that
    reads another field adds it here (the cache-equals-list test compares the results)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    slim_meta: Pod = {k: meta[k] for k in ("name", "namespace", "uid", "labels") if meta.get(k)}
    annotations = meta.get("annotations") or {}
    kept = {k: annotations[k] for k in _KEPT_ANNOTATIONS if k in annotations}
    if kept:
        slim_meta["annotations"] = kept
    owners = meta.get("ownerReferences")
    if owners:
        slim_meta["ownerReferences"] = [{"kind": o.get("kind")} for o in owners]
    slim_spec: Pod = {
        "containers": [
            {"resources": {"requests": requests}}
            if (requests := (c.get("resources") or {}).get("requests"))
            else {}
            for c in spec.get("containers") or []
        ]
    }
    if spec.get("nodeName"):
        slim_spec["nodeName"] = spec["nodeName"]
    slim_status: Pod = {k: status[k] for k in ("phase", "startTime") if status.get(k)}
    conditions = [
        {k: c[k] for k in ("type", "status", "reason") if k in c}
        for c in status.get("conditions") or []
        if c.get("type") in _KEPT_CONDITIONS
    ]
    if conditions:
        slim_status["conditions"] = conditions
    return {"metadata": slim_meta, "spec": slim_spec, "status": slim_status}


def _pod_key(pod: Pod) -> str:
    """The uid: a pod deleted and made again under its name is another pod."""
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace') or ''}/{meta.get('name')}")


@dataclass
class RegionPodReader:
    """One region's live pods and the list/watch loop that keeps them (`run`, in a thread
    of its own). Thread-safe: the probe's threads read while the loop writes."""

    region: str
    gateway: JobGateway
    stale_seconds: float = 5.0
    watch_timeout_seconds: int = 60
    page_size: int = 500
    backoff_initial: float = 0.5
    # As the Job watch's: a region back from an outage is read again within seconds.
    backoff_max: float = 4.0
    clock: Callable[[], float] = time.monotonic
    stats: StreamStats = field(default_factory=StreamStats)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    _pods: dict[str, Pod] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listed: bool = False
    # clock() when the reader lost the API (a failed list or watch), None while it has it.
    _broken_since: float | None = None
    _resource_version: str | None = None

    def pods(self) -> list[Pod]:
        """The live pods now: a new list of the cached dicts (which are never changed in
        place: an update replaces a pod's dict)."""
        with self._lock:
            return list(self._pods.values())

    def synced(self) -> bool:
        with self._lock:
            if not self._listed:
                return False
            broken = self._broken_since
        return broken is None or self.clock() - broken < self.stale_seconds

    def run(self, *, max_cycles: int | None = None) -> None:
        """List and watch until `stop_flag` is set (or `max_cycles` cycles, for tests)."""
        backoff = self.backoff_initial
        cycles = 0
        while not self.stop_flag.is_set() and (max_cycles is None or cycles < max_cycles):
            cycles += 1
            try:
                if self._resource_version is None:
                    self._list()
                self._watch()
                backoff = self.backoff_initial
            except KubeGone:
                self.stats.gone += 1
                self._resource_version = None  # too old: re-list at once
            except Exception as exc:  # noqa: BLE001 - any failure: back off and go on
                self.stats.errors += 1
                self._lost()
                if not isinstance(exc, KubeError):
                    # Not the API's doing: what the cache holds may be off, so re-list.
                    log.exception("pod cache %s: reader failed", self.region)
                    self._resource_version = None
                else:
                    log.info("pod cache %s: %s; retrying in %.1fs", self.region, exc, backoff)
                self.stop_flag.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max)

    def _lost(self) -> None:
        with self._lock:
            if self._broken_since is None:
                self._broken_since = self.clock()

    def _connected(self) -> None:
        with self._lock:
            self._broken_since = None

    def _list(self) -> None:
        self.stats.lists += 1
        core = self.gateway.clients.core(self.region)
        pods: dict[str, Pod] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"field_selector": LIVE_PODS_SELECTOR, "limit": self.page_size}
            if token:
                kwargs["_continue"] = token
            data = self.gateway.get_json(core.list_pod_for_all_namespaces, **kwargs)
            for pod in data.get("items") or []:
                pods[_pod_key(pod)] = slim_pod(pod)
            meta = data.get("metadata") or {}
            resource_version = str(meta.get("resourceVersion") or "")
            token = meta.get("continue")
            if not token:
                break
        with self._lock:
            self._pods = pods
            self._listed = True
            self._broken_since = None
        self._resource_version = resource_version or None

    def _watch(self) -> None:
        self.stats.watches += 1
        core = self.gateway.clients.core(self.region)
        response = open_watch(
            self.gateway,
            core.list_pod_for_all_namespaces,
            resource_version=self._resource_version,
            timeout_seconds=self.watch_timeout_seconds,
        )
        self._connected()
        try:
            for event in read_events(response, self.stop_flag):
                self._apply(event)
        except KubeError:
            raise
        except Exception as exc:  # noqa: BLE001 - a cut stream: mapped once, here
            raise translate(exc) from exc

    def _apply(self, event: Event) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            raise event_error(obj)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._resource_version = str(rv)
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
            return
        self.stats.events += 1
        key = _pod_key(obj)
        with self._lock:
            if kind == "DELETED" or not is_live(obj):
                self._pods.pop(key, None)
            elif kind in ("ADDED", "MODIFIED"):
                self._pods[key] = slim_pod(obj)


class PodCache:
    """Per unit worker: a `RegionPodReader` for each region it serves, each in a daemon
    thread, started and stopped with the worker."""

    def __init__(
        self, gateway: JobGateway, *, stale_seconds: float = 5.0, **reader_options: Any
    ) -> None:
        self.gateway = gateway
        self.stale_seconds = stale_seconds
        self._reader_options = reader_options
        self._readers: dict[str, RegionPodReader] = {}
        self._threads: list[threading.Thread] = []

    def start(self, regions: Iterable[str]) -> None:
        for region in regions:
            if region in self._readers:
                continue
            reader = RegionPodReader(
                region, self.gateway, stale_seconds=self.stale_seconds, **self._reader_options
            )
            self._readers[region] = reader
            thread = threading.Thread(target=reader.run, name=f"pods-{region}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, *, join_seconds: float = 1.0) -> None:
        """Stop every reader. A reader in a quiet watch notices at its next line (a
        bookmark at the latest); daemon threads, so none holds the process up."""
        for reader in self._readers.values():
            reader.stop_flag.set()
        deadline = time.monotonic() + join_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def reader(self, region: str) -> RegionPodReader | None:
        return self._readers.get(region)

    def synced(self, region: str) -> bool:
        reader = self._readers.get(region)
        return reader is not None and reader.synced()

    def pods(self, region: str) -> list[Pod]:
        """The region's cached live pods (empty when it has no reader)."""
        reader = self._readers.get(region)
        return reader.pods() if reader is not None else []
