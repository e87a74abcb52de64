"""Status channel 1: watch a region's managed Jobs and report every relevant change.

Every namespace at once (each business unit has its own), by the managed label: one
list and one watch per region however many units there are.

List, then watch from the list's resourceVersion with bookmarks; on 410 Gone re-list;
on errors back off (capped) and reconnect from the last resourceVersion seen. Each Job
is reported when its phase changes, deduplicated by resourceVersion, so the owning
workflow hears about a change once per unit worker lifetime, not once per status tick.
The blocking client runs in a thread; the loop itself is asyncio and stoppable.

Memory stays flat however long the worker lives: a Job is forgotten once it has ended
(and been reported) or is deleted, the rest are an LRU capped by `watch_seen_jobs`, and
the events between the reader thread and the loop are at most one per Job, capped by
`watch_pending_jobs` (see `_Pending`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from meridian.kube.contracts import JobObservation, JobPhase
from meridian.kube.errors import KubeError, KubeGone, translate
from meridian.kube.gateway import JobGateway
from meridian.kube.jobs import observe_job
from meridian.kube.labels import MANAGED_SELECTOR
from meridian.kube.watch_stream import (
    Event,
    StreamStats,
    event_error,
    stream_events,
    version_number,
)
from meridian.observability import record as measure
from meridian.settings import ChannelSettings

log = logging.getLogger(__name__)

Report = Callable[[JobObservation], Awaitable[None]]
# Told when the watch fails for a reason other than an expired resourceVersion (the API
# refused, reset or errored): the region may be going down.
OnError = Callable[[str, KubeError], Awaitable[None]]

# Phases a Job never leaves: once reported there is no later change to deduplicate.
_FINAL = frozenset({JobPhase.SUCCEEDED, JobPhase.FAILED})


@dataclass
class WatchStats(StreamStats):
    reported: int = 0


@dataclass
class _Seen:
    resource_version: int
    key: tuple[Any, ...]


class _Pending:
    """Watch events read but not yet handled: at most one state per Job, `limit` Jobs.

    The reader thread puts, the event loop takes. Only a Job's latest state matters (the
    watch reports where a Job is now, and the workflow acts on that, not on the steps in
    between), so a newer event for a Job replaces the one still waiting: a burst of
    updates costs one entry per Job, not one per event, and no Job's latest phase is
    dropped. The replacement moves to the back, which keeps the queue in resourceVersion
    order, so the version the watch resumes from never passes an event still waiting.
    A deletion never replaces a waiting state (that state may be the Job's end, still
    unreported); it waits behind it. When `limit` Jobs wait, the reader blocks, and with
    it the API connection: back-pressure instead of memory.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._limit = limit
        self._events: OrderedDict[Hashable, Event | None] = OrderedDict()
        self._lock = threading.Condition()
        self._ready = asyncio.Event()
        self._closed = False
        self._unique = itertools.count()

    def put(self, event: Event | None) -> bool:
        """Queue an event (None: the stream ended); False once the loop side has gone."""
        slot = _slot(event)
        with self._lock:
            if slot is None:
                # Errors and the end of the stream: each kept, never held back.
                slot = ("control", next(self._unique))
            elif slot in self._events:
                del self._events[slot]
            else:
                while len(self._events) >= self._limit and not self._closed:
                    self._lock.wait()
            if self._closed:
                return False
            was_empty = not self._events
            self._events[slot] = event
        if was_empty:
            # The loop waits only after seeing the queue empty; so this wakes it.
            try:
                self._loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                self.close()
                return False
        return True

    async def take(self) -> Event | None:
        while True:
            with self._lock:
                if self._events:
                    _, event = self._events.popitem(last=False)
                    self._lock.notify()
                    return event
                self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """The loop side is done: drop what waits and let the reader stop."""
        with self._lock:
            self._closed = True
            self._events.clear()
            self._lock.notify_all()


def _slot(event: Event | None) -> Hashable | None:
    """Which waiting event a new one replaces; None: it replaces nothing."""
    if event is None:
        return None
    kind = event.get("type")
    if kind == "BOOKMARK":
        return ("bookmark",)
    if kind in ("ADDED", "MODIFIED", "DELETED"):
        meta = (event.get("object") or {}).get("metadata") or {}
        # The uid, not the name: a Job deleted and created again under its name is
        # another Job, and its deletion must not be lost to the new Job's state.
        job = meta.get("uid") or meta.get("name")
        if job:
            return ("deleted" if kind == "DELETED" else "state", str(job))
    return None


def _job_key(job: dict[str, Any]) -> str:
    """A Job's name is unique only within its namespace."""
    meta = job.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name')}"


@dataclass
class JobWatcher:
    region: str
    gateway: JobGateway
    namespace: str | None  # None: every namespace
    report: Report
    watch_timeout_seconds: int = 60
    backoff_initial: float = 0.5
    # Short enough that a region back from an outage is watched again within seconds,
    # and that a new outage finds an open watch to cut (which is what reports it at once).
    backoff_max: float = 4.0
    on_error: OnError | None = None
    limits: ChannelSettings = field(default_factory=ChannelSettings)
    stats: WatchStats = field(default_factory=WatchStats)
    # "namespace/name" of a Job -> what was last seen of it; the one seen longest ago first.
    _seen: OrderedDict[str, _Seen] = field(default_factory=OrderedDict)
    _resource_version: str | None = None
    # Every change up to this resourceVersion has been handled (kept across a 410 Gone):
    # a re-list skips Jobs unchanged since, which the watch no longer remembers once
    # they ended, instead of reporting them all again.
    _handled_through: int | None = None
    _stop_flag: threading.Event = field(default_factory=threading.Event)

    @property
    def remembered_jobs(self) -> int:
        return len(self._seen)

    async def run(self, stop: asyncio.Event, *, max_cycles: int | None = None) -> None:
        """Watch until `stop` is set (or `max_cycles` list/watch cycles, for tests)."""
        backoff = self.backoff_initial
        cycles = 0
        stopper = asyncio.create_task(self._propagate_stop(stop))
        try:
            while not stop.is_set() and (max_cycles is None or cycles < max_cycles):
                cycles += 1
                try:
                    if self._resource_version is None:
                        await self._list()
                    await self._watch()
                    backoff = self.backoff_initial
                    if not stop.is_set():
                        measure.watch_restart(self.region, "closed")
                except KubeGone:
                    self.stats.gone += 1
                    measure.watch_restart(self.region, "gone")
                    handled = version_number(self._resource_version)
                    if handled is not None:
                        self._handled_through = handled
                    self._resource_version = None  # too old: re-list
                except KubeError as exc:
                    self.stats.errors += 1
                    measure.watch_restart(self.region, "error")
                    log.info("watch %s: %s; retrying in %.1fs", self.region, exc, backoff)
                    if self.on_error is not None:
                        try:
                            await self.on_error(self.region, exc)
                        except Exception:  # noqa: BLE001 - a hint; the watch goes on
                            log.exception("watch %s: error callback failed", self.region)
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=backoff)
                    except TimeoutError:
                        pass
                    backoff = min(backoff * 2, self.backoff_max)
        finally:
            stopper.cancel()

    async def _propagate_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop_flag.set()

    async def _list(self) -> None:
        self.stats.lists += 1
        pages = await asyncio.to_thread(self._list_blocking)
        for items, resource_version in pages:
            for job in items:
                if not self._handled_before(job):
                    await self._consider(job)
            self._resource_version = resource_version

    def _handled_before(self, job: dict[str, Any]) -> bool:
        if self._handled_through is None:
            return False
        version = version_number((job.get("metadata") or {}).get("resourceVersion"))
        return version is not None and version <= self._handled_through

    def _list_blocking(self) -> list[tuple[list[dict[str, Any]], str]]:
        batch = self.gateway.clients.batch(self.region)
        pages = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": MANAGED_SELECTOR, "limit": 500}
            if token:
                kwargs["_continue"] = token
            if self.namespace is None:
                data = self.gateway.get_json(batch.list_job_for_all_namespaces, **kwargs)
            else:
                data = self.gateway.get_json(batch.list_namespaced_job, self.namespace, **kwargs)
            meta = data.get("metadata") or {}
            pages.append((list(data.get("items") or []), str(meta.get("resourceVersion") or "")))
            token = meta.get("continue")
            if not token:
                return pages

    async def _watch(self) -> None:
        self.stats.watches += 1
        pending = _Pending(asyncio.get_running_loop(), self.limits.watch_pending_jobs)
        thread = threading.Thread(
            target=self._pump, args=(pending,), name=f"watch-{self.region}", daemon=True
        )
        thread.start()
        try:
            await self._handle(pending)
        finally:
            pending.close()

    def _pump(self, pending: _Pending) -> None:
        stream = self._stream_blocking()
        try:
            for event in stream:
                if not pending.put(event):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the async side
            pending.put({"type": "_EXC", "exc": exc})
        finally:
            stream.close()  # releases the connection when the loop side left early
            pending.put(None)

    async def _handle(self, pending: _Pending) -> None:
        while True:
            event = await pending.take()
            if event is None:
                return
            kind = event.get("type")
            if kind == "_EXC":
                raise translate(event["exc"])
            obj = event.get("object") or {}
            if kind == "ERROR":
                raise event_error(obj)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._resource_version = str(rv)
            if kind == "BOOKMARK":
                self.stats.bookmarks += 1
                continue
            self.stats.events += 1
            if kind == "DELETED":
                self._seen.pop(_job_key(obj), None)
                continue
            await self._consider(obj)

    def _stream_blocking(self) -> Generator[Event, None, None]:
        # A generator itself, so that even building the client fails in the reader's
        # try (see `_pump`), not before it.
        batch = self.gateway.clients.batch(self.region)
        if self.namespace is None:
            request: Any = batch.list_job_for_all_namespaces
        else:
            request = partial(batch.list_namespaced_job, self.namespace)
        yield from stream_events(
            self.gateway,
            request,
            resource_version=self._resource_version,
            timeout_seconds=self.watch_timeout_seconds,
            stop=self._stop_flag,
            label_selector=MANAGED_SELECTOR,
        )

    async def _consider(self, job: dict[str, Any]) -> None:
        obs = observe_job(job, self.region, source="watch")
        if obs is None:
            return
        if obs.phase is JobPhase.FAILED:
            # The pod says whether the task or its node failed, and with which exit code.
            namespace = obs.namespace or self.namespace or ""
            try:
                pods = await asyncio.to_thread(
                    self.gateway.job_pods, self.region, namespace, obs.job_name
                )
                obs = observe_job(job, self.region, pods, source="watch") or obs
            except KubeError as exc:
                log.info("reading pods of %s in %s failed: %s", obs.job_name, self.region, exc)
        key = (obs.phase, obs.exit_code, obs.failure_kind)
        job_key = _job_key(job)
        seen = self._seen.get(job_key)
        if seen is not None and (seen.resource_version >= obs.resource_version or seen.key == key):
            if seen.resource_version < obs.resource_version:
                seen.resource_version = obs.resource_version
            self._seen.move_to_end(job_key)
            return
        if obs.phase in _FINAL:
            # Its last change: nothing later to deduplicate against, so nothing to keep.
            self._seen.pop(job_key, None)
        else:
            self._remember(job_key, _Seen(obs.resource_version, key))
            if seen is None and obs.phase is JobPhase.PENDING:
                return  # a new Job being pending is what the workflow already assumes
        self.stats.reported += 1
        await self.report(obs)

    def _remember(self, job_key: str, seen: _Seen) -> None:
        self._seen[job_key] = seen
        self._seen.move_to_end(job_key)
        while len(self._seen) > self.limits.watch_seen_jobs:
            # The Job not heard of for longest; if it changes again it is reported again.
            self._seen.popitem(last=False)
