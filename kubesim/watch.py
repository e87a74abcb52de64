"""Watch streams: newline-delimited JSON watch events over a chunked HTTP response.

As kube-apiserver does, a watch from a compacted resourceVersion answers HTTP 200 and
sends a single ERROR event carrying a 410 ``Expired`` Status, then ends the stream.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from aiohttp import web

from kubesim import errors
from kubesim.resources import ResourceType
from kubesim.selectors import FieldSelector, LabelSelector
from kubesim.store import Watcher, dumps

if TYPE_CHECKING:
    from kubesim.cluster import Cluster

BOOKMARK_INTERVAL = 2.0
LIVENESS_CHECK = 5.0


def parse_since(value: str | None) -> int | None:
    if value is None or value in ("", "0"):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f'invalid resource version "{value}"') from exc


def _bookmark(rt: ResourceType, rv: int) -> bytes:
    obj = {
        "kind": rt.kind,
        "apiVersion": rt.api_version,
        "metadata": {"resourceVersion": str(rv), "creationTimestamp": None},
    }
    return dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


async def serve_watch(
    request: web.Request,
    cluster: Cluster,
    rt: ResourceType,
    namespace: str | None,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmark_interval: float = BOOKMARK_INTERVAL,
) -> web.StreamResponse:
    query = request.query
    since = parse_since(query.get("resourceVersion"))
    timeout_raw = query.get("timeoutSeconds")
    if timeout_raw:
        timeout = float(timeout_raw)
    else:
        # The apiserver picks a random timeout in [minRequestTimeout, 2*minRequestTimeout).
        timeout = 1800.0 * (1 + random.random())
    bookmarks = query.get("allowWatchBookmarks", "").lower() in ("1", "true")
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        watcher = cluster.store.open_watch(rt.name, namespace, labels, fields, since)
    except errors.ApiError as exc:
        await response.prepare(request)
        await response.write(dumps({"type": "ERROR", "object": exc.status}) + b"\n")
        await response.write_eof()
        return response
    cluster.stats.record("watch", rt.name)
    await response.prepare(request)
    deadline = time.monotonic() + timeout
    next_bookmark = time.monotonic() + bookmark_interval
    try:
        while True:
            watcher.wake.clear()
            chunk = b"".join(watcher.buffer)
            watcher.buffer.clear()
            now = time.monotonic()
            expired = now >= deadline
            if bookmarks and not watcher.closed and (now >= next_bookmark or expired):
                # Taken together with the buffer so no event at or below it is still unsent.
                chunk += _bookmark(rt, cluster.store.rv)
                next_bookmark = now + bookmark_interval
            if chunk:
                await response.write(chunk)
            if watcher.closed or expired:
                break
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            # Wake at least every few seconds to notice a client that went away.
            wait = min(deadline - now, LIVENESS_CHECK)
            if bookmarks:
                wait = min(wait, next_bookmark - now)
            try:
                await asyncio.wait_for(watcher.wake.wait(), timeout=max(wait, 0.0))
            except TimeoutError:
                pass
    except ConnectionError:
        return response
    finally:
        cluster.store.close_watch(rt.name, watcher)
    if watcher.abort:
        _abort(request, watcher)
        return response
    try:
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away first
    return response


def _abort(request: web.Request, watcher: Watcher) -> None:
    """Cut the TCP connection mid-stream, as a dropped connection looks to a client."""
    transport = request.transport
    if transport is not None:
        transport.abort()
