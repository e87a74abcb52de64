"""Durable state: ``--state-file PATH`` snapshots every region and restores it at start.

The file is one JSON document::

    {"kind": "KubesimState", "version": 1, "saved_at": <unix time>, "clean": <bool>,
     "regions": {<name>: {
        "resource_version": <the cluster's counter>,
        "pools": [{name, cpu, memory, min, max, desired, next_index, nodes}],
        "network": [{target, rtt_ms, loss}],
        "provisioning": {<node>: <unix time it turns Ready>},
        "kubelet": {"run_started": [[ns, pod, <unix time>]], "status_states": [[ns, pod,
                    state]], "evictions": {<node>: <unix time its pods are failed>}},
        "jobs": {"ledgers": {<job uid>: [[succeeded pods], [failed pods], <last failure>]},
                 "expected_deletions": [[ns, pod]]},
        "objects": {<resource>: [<object as served, with uid and resourceVersion>]}}}}

It is written atomically (a temporary file in the same directory, fsync, ``os.replace``)
every ``interval`` seconds when anything changed, and once more on a clean stop with
``"clean": true``. Capturing is a walk over references in the event loop (stored object
versions are never mutated in place); encoding and writing happen in a worker thread.
Fault injections (outage, API errors, latency) are not saved.

resourceVersions: after a clean stop the counter resumes exactly where it stopped; after
a crash (the last periodic snapshot) it resumes ``CRASH_RV_GAP`` higher, above anything
the lost process may have handed out. Either way the watch windows start empty at the
resumed counter: a watch (or continue token) from the resumed resourceVersion continues,
one from any older resourceVersion gets 410 Expired, as after a kube-apiserver restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesim.store import Entry, dumps
from kubesim.types import Obj

if TYPE_CHECKING:
    from kubesim.server import Simulator

log = logging.getLogger(__name__)

KIND = "KubesimState"
VERSION = 1
DEFAULT_INTERVAL = 5.0
CRASH_RV_GAP = 1_000_000

Captured = dict[str, tuple[Obj, dict[str, list[Entry]]]]


def warn(message: str) -> None:
    sys.stderr.write(f"kubesim: warning: {message}\n")
    sys.stderr.flush()


def encode(captured: Captured, clean: bool) -> list[bytes]:
    """The file's bytes, in pieces; objects reuse their cached JSON encoding."""
    header = {"kind": KIND, "version": VERSION, "saved_at": time.time(), "clean": clean}
    parts = [dumps(header)[:-1], b',"regions":{']
    for i, (name, (facts, entries)) in enumerate(captured.items()):
        parts.append((b"," if i else b"") + dumps(name) + b":" + dumps(facts)[:-1])
        parts.append(b',"objects":{')
        for j, (resource, items) in enumerate(entries.items()):
            parts.append((b"," if j else b"") + dumps(resource) + b":[")
            parts.append(b",".join([entry.raw() for entry in items]))
            parts.append(b"]")
        parts.append(b"}}")
    parts.append(b"}}\n")
    return parts


def write_atomically(path: Path, parts: list[bytes]) -> int:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.writelines(parts)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        pass
    else:
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    return sum(len(p) for p in parts)


def load(path: Path, region_names: list[str]) -> Obj | None:
    """The saved state if ``path`` holds one for exactly these regions; else None, with a
    warning line on stderr (a missing file is silent: the first start)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        warn(f"cannot read state file {path}: {exc}; starting empty")
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        warn(f"state file {path} is not valid JSON ({exc}); starting empty")
        return None
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("version") != VERSION:
        warn(f"state file {path} is not a version-{VERSION} kubesim state; starting empty")
        return None
    regions = data.get("regions")
    if not isinstance(regions, dict) or sorted(regions) != sorted(region_names):
        saved = sorted(regions) if isinstance(regions, dict) else []
        warn(
            f"state file {path} holds regions {saved}, the regions file lists "
            f"{sorted(region_names)}; ignoring it and starting empty (it will be overwritten)"
        )
        return None
    return data


def resume_rv(data: Obj, region: Obj) -> int:
    """Where a restored cluster's resourceVersion counter continues."""
    top = int(region.get("resource_version") or 1)
    for objects in (region.get("objects") or {}).values():
        for obj in objects:
            try:
                top = max(top, int(obj["metadata"].get("resourceVersion") or 0))
            except (TypeError, ValueError):
                continue
    return top if data.get("clean") else top + CRASH_RV_GAP


class StateKeeper:
    """Saves the simulator's state to ``path`` periodically and on stop."""

    def __init__(
        self, sim: Simulator, path: str | Path, interval: float = DEFAULT_INTERVAL
    ) -> None:
        self.sim = sim
        self.path = Path(path).resolve()
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[int] | None = None
        self._last: Any = None
        self.saves = 0
        self.active = False  # saving only once the simulator has started

    def load(self) -> Obj | None:
        return load(self.path, list(self.sim.clusters))

    def _signature(self) -> Any:
        return tuple(
            (
                cluster.store.rv,
                tuple(
                    (p.name, p.desired, p.next_index, len(p.nodes)) for p in cluster.pools.values()
                ),
                tuple((k, v.get("rtt_ms"), v.get("loss")) for k, v in cluster.network.items()),
                tuple(cluster.kubelet.desired_states.items()),
            )
            for cluster in self.sim.clusters.values()
        )

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._last = None
        self.active = True
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._periodic())

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.save(clean=False)
            except Exception:  # a full disk must not take the simulator down
                log.exception("saving state to %s failed", self.path)

    async def save(self, clean: bool) -> bool:
        """Capture now (in the loop) and write in a worker thread; False if unchanged."""
        if self._writing is not None:
            if not clean:
                return False  # the previous write is still going: try next interval
            with contextlib.suppress(Exception):  # it failed: this write replaces it
                await asyncio.shield(self._writing)
        signature = self._signature()
        if not clean and signature == self._last:
            return False
        captured: Captured = {name: c.capture() for name, c in self.sim.clusters.items()}
        started = time.monotonic()

        def work() -> int:
            return write_atomically(self.path, encode(captured, clean))

        future = asyncio.get_running_loop().run_in_executor(None, work)
        self._writing = future
        future.add_done_callback(self._written)
        # Shielded: a cancelled periodic task must not leave a half-tracked write behind.
        size = await asyncio.shield(future)
        self._last = signature
        self.saves += 1
        log.info("state saved to %s (%d bytes, %.2fs)", self.path, size, time.monotonic() - started)
        return True

    def _written(self, future: asyncio.Future[int]) -> None:
        if self._writing is future:
            self._writing = None
        if not future.cancelled():
            future.exception()  # retrieved here so asyncio does not log it a second time

    async def stop(self) -> None:
        """Stop the periodic saves and write the final (clean) snapshot; nothing if the
        simulator never started (a failed start must not overwrite a good state file)."""
        if not self.active:
            return
        self.active = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.save(clean=True)
