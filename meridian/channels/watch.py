"""Status channel 1: watch a region's managed Jobs and report every relevant change.

List, then watch from the list's resourceVersion with bookmarks; on 410 Gone re-list;
on errors back off (capped) and reconnect from the last resourceVersion seen. Each Job
is reported when its phase changes, deduplicated by resourceVersion, so the owning
workflow hears about a change once per unit worker lifetime, not once per status tick.
The blocking client runs in a thread; the loop itself is asyncio and stoppable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

from meridian.kube.contracts import JobObservation, JobPhase
from meridian.kube.errors import KubeError, KubeGone, translate
from meridian.kube.gateway import JobGateway
from meridian.kube.jobs import observe_job
from meridian.kube.labels import MANAGED_SELECTOR

log = logging.getLogger(__name__)

Report = Callable[[JobObservation], Awaitable[None]]
# Told when the watch fails for a reason other than an expired resourceVersion (the API
# refused, reset or errored): the region may be going down.
OnError = Callable[[str, KubeError], Awaitable[None]]


@dataclass
class WatchStats:
    lists: int = 0
    watches: int = 0
    events: int = 0
    bookmarks: int = 0
    gone: int = 0
    errors: int = 0
    reported: int = 0


@dataclass
class _Seen:
    resource_version: int
    key: tuple[Any, ...]


@dataclass
class JobWatcher:
    region: str
    gateway: JobGateway
    namespace: str
    report: Report
    watch_timeout_seconds: int = 60
    backoff_initial: float = 0.5
    # Short enough that a region back from an outage is watched again within seconds,
    # and that a new outage finds an open watch to cut (which is what reports it at once).
    backoff_max: float = 4.0
    on_error: OnError | None = None
    stats: WatchStats = field(default_factory=WatchStats)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _resource_version: str | None = None
    _stop_flag: threading.Event = field(default_factory=threading.Event)

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
                except KubeGone:
                    self.stats.gone += 1
                    self._resource_version = None  # too old: re-list
                except KubeError as exc:
                    self.stats.errors += 1
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
                await self._consider(job)
            self._resource_version = resource_version

    def _list_blocking(self) -> list[tuple[list[dict[str, Any]], str]]:
        batch = self.gateway.clients.batch(self.region)
        pages = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": MANAGED_SELECTOR, "limit": 500}
            if token:
                kwargs["_continue"] = token
            data = self.gateway.get_json(batch.list_namespaced_job, self.namespace, **kwargs)
            meta = data.get("metadata") or {}
            pages.append((list(data.get("items") or []), str(meta.get("resourceVersion") or "")))
            token = meta.get("continue")
            if not token:
                return pages

    async def _watch(self) -> None:
        self.stats.watches += 1
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def pump() -> None:
            try:
                for event in self._stream_blocking():
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except BaseException as exc:  # noqa: BLE001 - handed to the async side
                loop.call_soon_threadsafe(queue.put_nowait, {"type": "_EXC", "exc": exc})
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        thread = threading.Thread(target=pump, name=f"watch-{self.region}", daemon=True)
        thread.start()
        while True:
            event = await queue.get()
            if event is None:
                return
            kind = event.get("type")
            if kind == "_EXC":
                raise translate(event["exc"])
            obj = event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 0)
                if code == 410:
                    raise KubeGone(
                        str(obj.get("message") or "resource version too old"), status=410
                    )
                raise KubeError(str(obj.get("message") or "watch error"), status=code)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._resource_version = str(rv)
            if kind == "BOOKMARK":
                self.stats.bookmarks += 1
                continue
            self.stats.events += 1
            if kind == "DELETED":
                self._seen.pop(str((obj.get("metadata") or {}).get("name")), None)
                continue
            await self._consider(obj)

    def _stream_blocking(self) -> Any:
        batch = self.gateway.clients.batch(self.region)
        self.gateway.requests += 1
        try:
            response: Any = batch.list_namespaced_job(
                self.namespace,
                label_selector=MANAGED_SELECTOR,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=self._resource_version,
                timeout_seconds=self.watch_timeout_seconds,
                _preload_content=False,
                _request_timeout=(3.0, self.watch_timeout_seconds + 10),
            )
        except Exception as exc:  # noqa: BLE001 - mapped once, here
            raise translate(exc) from exc
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if self._stop_flag.is_set():
                    return
                if line:
                    yield json.loads(line)
        finally:
            response.release_conn()

    async def _consider(self, job: dict[str, Any]) -> None:
        obs = observe_job(job, self.region, source="watch")
        if obs is None:
            return
        if obs.phase is JobPhase.FAILED:
            # The pod says whether the task or its node failed, and with which exit code.
            try:
                pods = await asyncio.to_thread(
                    self.gateway.job_pods, self.region, self.namespace, obs.job_name
                )
                obs = observe_job(job, self.region, pods, source="watch") or obs
            except KubeError as exc:
                log.info("reading pods of %s in %s failed: %s", obs.job_name, self.region, exc)
        key = (obs.phase, obs.exit_code, obs.failure_kind)
        seen = self._seen.get(obs.job_name)
        if seen is not None and (seen.resource_version >= obs.resource_version or seen.key == key):
            if seen.resource_version < obs.resource_version:
                seen.resource_version = obs.resource_version
            return
        self._seen[obs.job_name] = _Seen(obs.resource_version, key)
        if obs.phase is JobPhase.PENDING and seen is None:
            return  # a new Job being pending is what the workflow already assumes
        self.stats.reported += 1
        await self.report(obs)
