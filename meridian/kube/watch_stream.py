"""Reading one watch with the blocking kubernetes client, shared by the Job watch
(meridian/channels/watch.py) and the pod cache (meridian/regions/pod_cache.py).

Raw JSON lines, not the client's `watch.Watch` with models: deserialising every event
into model objects costs several times the parse, and the callers read a few fields.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

from meridian.kube.errors import KubeError, KubeGone, translate


@dataclass
class StreamStats:
    """What a list+watch reader has done: lists, watches opened, events and bookmarks
    read, 410s and other errors met."""

    lists: int = 0
    watches: int = 0
    events: int = 0
    bookmarks: int = 0
    gone: int = 0
    errors: int = 0


Event = dict[str, Any]


def open_watch(
    gateway: Any,
    request: Any,
    *,
    resource_version: str | None,
    timeout_seconds: int,
    **selectors: Any,
) -> Any:
    """Open a watch with bookmarks from `resource_version` (`request`: a list method,
    e.g. list_pod_for_all_namespaces); the raw response, for `read_events`. KubeError
    when the API refuses it."""
    gateway.requests += 1
    try:
        return request(
            watch=True,
            allow_watch_bookmarks=True,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            _preload_content=False,
            # A server quiet past its own timeout is a dead connection, not a quiet watch.
            _request_timeout=(3.0, timeout_seconds + 10),
            **selectors,
        )
    except Exception as exc:  # noqa: BLE001 - mapped once, here
        raise translate(exc) from exc


def read_events(response: Any, stop: threading.Event) -> Generator[Event, None, None]:
    """The events of an open watch until the server ends it, it breaks or `stop` is set
    (seen at the next line: bookmarks keep a quiet watch ticking). A cut stream raises
    the client's own exception (`translate` maps it). Releases the connection."""
    try:
        for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
            if stop.is_set():
                return
            if line:
                yield json.loads(line)
    finally:
        response.release_conn()


def stream_events(
    gateway: Any,
    request: Any,
    *,
    resource_version: str | None,
    timeout_seconds: int,
    stop: threading.Event,
    **selectors: Any,
) -> Generator[Event, None, None]:
    """`open_watch` then `read_events`, opened at the first `next()`."""
    response = open_watch(
        gateway,
        request,
        resource_version=resource_version,
        timeout_seconds=timeout_seconds,
        **selectors,
    )
    yield from read_events(response, stop)


def event_error(obj: dict[str, Any]) -> KubeError:
    """The error an ERROR event's Status carries; KubeGone for 410 (re-list)."""
    code = int(obj.get("code") or 0)
    if code == 410:
        return KubeGone(str(obj.get("message") or "resource version too old"), status=410)
    return KubeError(str(obj.get("message") or "watch error"), status=code)


def version_number(value: Any) -> int | None:
    """A resourceVersion as a number (the watch already orders them so), None if not one."""
    try:
        version = int(value)
    except (TypeError, ValueError):
        return None
    return version if version > 0 else None
