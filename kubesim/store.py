"""The object store of one cluster: objects, resourceVersions, indexes and watch events.

One resourceVersion counter per cluster, as etcd's revision. Stored object dicts are
never mutated in place: writers store a fresh dict, so readers (lists, watches, the
JSON cache) can hold references safely.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from kubesim import errors
from kubesim.resources import ResourceType
from kubesim.selectors import FieldSelector, LabelSelector
from kubesim.types import Key, Obj
from kubesim.util import clone

Listener = Callable[[str, Obj, Obj | None], None]

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
WATCHER_BUFFER = 100_000


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Entry:
    """A stored object version with its JSON encoding cached on first use."""

    __slots__ = ("obj", "_raw")

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self._raw: bytes | None = None

    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = dumps(self.obj)
        return self._raw


class WatchEvent:
    __slots__ = ("type", "rv", "entry", "prev", "_lines")

    def __init__(self, type_: str, rv: int, entry: Entry, prev: Obj | None) -> None:
        self.type = type_
        self.rv = rv
        self.entry = entry
        self.prev = prev
        self._lines: dict[str, bytes] = {}

    def line(self, type_: str) -> bytes:
        line = self._lines.get(type_)
        if line is None:
            line = b'{"type":"' + type_.encode() + b'","object":' + self.entry.raw() + b"}\n"
            self._lines[type_] = line
        return line


class Watcher:
    """One open watch stream's filter and buffer; the HTTP handler drains it."""

    def __init__(
        self,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> None:
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.buffer: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.abort = False  # close the connection without a clean end (dropped/outage)

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj["metadata"]
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        if not self.labels.empty and not self.labels.matches(meta.get("labels")):
            return False
        return self.fields.empty or self.fields.matches(obj)

    def translate(self, event: WatchEvent) -> bytes | None:
        """The line this watcher sees for an event, honouring selector transitions."""
        if event.type == ADDED:
            return event.line(ADDED) if self._matches(event.entry.obj) else None
        if event.type == DELETED:
            return event.line(DELETED) if self._matches(event.entry.obj) else None
        now, before = self._matches(event.entry.obj), self._matches(event.prev)
        if now and before:
            return event.line(MODIFIED)
        if now:
            return event.line(ADDED)
        if before:
            return event.line(DELETED)
        return None

    def offer(self, event: WatchEvent) -> None:
        if self.closed:
            return
        line = self.translate(event)
        if line is None:
            return
        if len(self.buffer) >= WATCHER_BUFFER:
            # The real watch cache terminates watchers that cannot keep up.
            self.close(abort=False)
            return
        self.buffer.append(line)
        self.wake.set()

    def close(self, abort: bool) -> None:
        self.closed = True
        self.abort = self.abort or abort
        self.wake.set()


class ResourceStore:
    def __init__(self, rt: ResourceType, window: int) -> None:
        self.rt = rt
        self.by_ns: dict[str, dict[str, Entry]] = {}
        self.count = 0
        self.label_index: dict[str, dict[str, set[Key]]] = {}
        self.window: deque[WatchEvent] = deque()
        self.window_size = window
        self.compacted_rv = 0
        self.watchers: set[Watcher] = set()
        self.listeners: list[Listener] = []
        self._sorted: dict[str | None, list[Key]] = {}

    def get(self, ns: str, name: str) -> Entry | None:
        bucket = self.by_ns.get(ns)
        return bucket.get(name) if bucket else None

    def _index(self, key: Key, labels: dict[str, str] | None, add: bool) -> None:
        for label, value in (labels or {}).items():
            by_value = self.label_index.setdefault(label, {})
            keys = by_value.setdefault(value, set())
            if add:
                keys.add(key)
            else:
                keys.discard(key)
                if not keys:
                    del by_value[value]

    def put(self, key: Key, obj: Obj, prev: Obj | None) -> Entry:
        entry = Entry(obj)
        ns, name = key
        bucket = self.by_ns.setdefault(ns, {})
        if name not in bucket:
            self.count += 1
            self._sorted.clear()
        bucket[name] = entry
        old_labels = prev["metadata"].get("labels") if prev else None
        new_labels = obj["metadata"].get("labels")
        if old_labels != new_labels:
            self._index(key, old_labels, add=False)
            self._index(key, new_labels, add=True)
        return entry

    def remove(self, key: Key) -> None:
        ns, name = key
        bucket = self.by_ns.get(ns)
        if bucket is None or name not in bucket:
            return
        entry = bucket.pop(name)
        if not bucket:
            del self.by_ns[ns]
        self.count -= 1
        self._sorted.clear()
        self._index(key, entry.obj["metadata"].get("labels"), add=False)

    def record(self, event: WatchEvent) -> None:
        if len(self.window) >= self.window_size:
            self.compacted_rv = self.window.popleft().rv
        self.window.append(event)
        for watcher in self.watchers:
            watcher.offer(event)

    def sorted_keys(self, ns: str | None) -> list[Key]:
        keys = self._sorted.get(ns)
        if keys is None:
            if ns is None:
                keys = sorted((n, name) for n, bucket in self.by_ns.items() for name in bucket)
            else:
                keys = sorted((ns, name) for name in self.by_ns.get(ns, {}))
            self._sorted[ns] = keys
        return keys

    def keys_with_label(self, label: str, value: str) -> set[Key]:
        return self.label_index.get(label, {}).get(value, set())

    def entries(self, ns: str | None = None) -> Iterable[Entry]:
        if ns is not None:
            yield from self.by_ns.get(ns, {}).values()
            return
        for bucket in self.by_ns.values():
            yield from bucket.values()


class ListResult:
    __slots__ = ("entries", "resource_version", "continue_token", "remaining")

    def __init__(
        self, entries: list[Entry], resource_version: int, token: str | None, remaining: int | None
    ) -> None:
        self.entries = entries
        self.resource_version = resource_version
        self.continue_token = token
        self.remaining = remaining


def encode_continue(rv: int, key: Key) -> str:
    # Same shape as the apiserver's storage continue token, so it looks familiar.
    start = f"{key[0]}/{key[1]}\u0000" if key[0] else f"{key[1]}\u0000"
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, Key]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("unknown version")
        start = str(data["start"]).rstrip("\u0000")
        ns, _, name = start.rpartition("/")
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc


class Store:
    def __init__(self, resource_types: Iterable[ResourceType], window: int = 1000) -> None:
        self.rv = 1
        self.resources: dict[str, ResourceStore] = {
            rt.name: ResourceStore(rt, window) for rt in resource_types
        }

    def __getitem__(self, resource: str) -> ResourceStore:
        return self.resources[resource]

    def listen(self, resource: str, listener: Listener) -> None:
        self.resources[resource].listeners.append(listener)

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    @staticmethod
    def key_of(obj: Obj) -> Key:
        meta = obj["metadata"]
        return meta.get("namespace", ""), meta["name"]

    def get(self, resource: str, ns: str, name: str) -> Obj | None:
        entry = self.resources[resource].get(ns, name)
        return entry.obj if entry else None

    def get_entry(self, resource: str, ns: str, name: str) -> Entry | None:
        return self.resources[resource].get(ns, name)

    def _write(self, resource: str, obj: Obj, prev: Obj | None, type_: str) -> Obj:
        rs = self.resources[resource]
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        key = self.key_of(obj)
        if type_ == DELETED:
            rs.remove(key)
            entry = Entry(obj)
        else:
            entry = rs.put(key, obj, prev)
        rs.record(WatchEvent(type_, rv, entry, prev))
        for listener in list(rs.listeners):
            listener(type_, obj, prev)
        return obj

    def create(self, resource: str, obj: Obj) -> Obj:
        """Store a new object (the caller has checked it does not exist)."""
        return self._write(resource, obj, None, ADDED)

    def update(self, resource: str, obj: Obj) -> Obj:
        """Replace an existing object with ``obj`` (a fresh dict the store now owns)."""
        key = self.key_of(obj)
        prev = self.resources[resource].get(*key)
        if prev is None:
            raise KeyError(key)
        return self._write(resource, obj, prev.obj, MODIFIED)

    def mutate(
        self, resource: str, ns: str, name: str, change: Callable[[Obj], bool | None]
    ) -> Obj | None:  # noqa: E501
        """Copy, change and store an object; ``change`` returning False skips the write."""
        current = self.get(resource, ns, name)
        if current is None:
            return None
        updated = clone(current)
        if change(updated) is False:
            return current
        return self.update(resource, updated)

    def delete(self, resource: str, ns: str, name: str) -> Obj | None:
        current = self.get(resource, ns, name)
        if current is None:
            return None
        final = dict(current)
        final["metadata"] = dict(current["metadata"])
        return self._write(resource, final, current, DELETED)

    def restore(self, resource: str, objects: Iterable[Obj]) -> None:
        """Put saved objects back as they were (resourceVersions untouched, no watch event)
        and tell the listeners, which rebuild the controllers' view as for an ADDED event.
        """
        rs = self.resources[resource]
        listeners = list(rs.listeners)
        for obj in objects:
            rs.put(self.key_of(obj), obj, None)
            for listener in listeners:
                listener(ADDED, obj, None)

    def resume_at(self, rv: int) -> None:
        """Continue the counter at ``rv`` after a restore: the event windows start empty,
        so a watch or continue token from before ``rv`` is answered 410 Expired."""
        self.rv = rv
        for rs in self.resources.values():
            rs.compacted_rv = rv
            rs.window.clear()

    def select(
        self,
        resource: str,
        ns: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> ListResult:
        rs = self.resources[resource]
        snapshot_rv = self.rv
        start: Key | None = None
        if continue_token:
            token_rv, start = decode_continue(continue_token)
            if token_rv < rs.compacted_rv:
                raise errors.continue_expired()
            snapshot_rv = token_rv
        name_hint = fields.exact("metadata.name")
        ns_hint = fields.exact("metadata.namespace")
        if ns is None and ns_hint is not None and rs.rt.namespaced:
            ns = ns_hint
        keys: list[Key]
        hints = labels.equality_hints()
        if name_hint is not None and ns is not None:
            keys = [(ns, name_hint)] if rs.get(ns, name_hint) else []
        elif hints:
            candidates = min((rs.keys_with_label(k, v) for k, v in hints), key=len)
            keys = sorted(k for k in candidates if ns is None or k[0] == ns)
        else:
            keys = rs.sorted_keys(ns)
        position = bisect.bisect_right(keys, start) if start is not None else 0
        selected: list[Entry] = []
        last_key: Key | None = None
        index = position
        total = len(keys)
        while index < total:
            key = keys[index]
            index += 1
            entry = rs.get(*key)
            if entry is None:
                continue
            obj = entry.obj
            if not labels.empty and not labels.matches(obj["metadata"].get("labels")):
                continue
            if not fields.empty and not fields.matches(obj):
                continue
            selected.append(entry)
            last_key = key
            if limit and len(selected) >= limit:
                break
        token = None
        remaining = None
        if limit and last_key is not None and index < total:
            token = encode_continue(snapshot_rv, last_key)
            if labels.empty and fields.empty:
                remaining = total - index
        return ListResult(selected, snapshot_rv, token, remaining)

    def open_watch(
        self,
        resource: str,
        ns: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        since: int | None,
    ) -> Watcher:
        """Register a watcher; replay events after ``since`` or the current state.

        ``since`` None means "start at most recent" with synthetic ADDED events for the
        current objects, which is what unset and "0" both mean for watch.
        """
        rs = self.resources[resource]
        watcher = Watcher(ns, labels, fields)
        if since is None:
            for entry in sorted(
                rs.entries(ns), key=lambda e: int(e.obj["metadata"]["resourceVersion"])
            ):  # noqa: E501
                line = b'{"type":"ADDED","object":' + entry.raw() + b"}\n"
                if watcher._matches(entry.obj):
                    watcher.buffer.append(line)
        else:
            if since < rs.compacted_rv:
                raise errors.expired(
                    errors.too_old_resource_version(since, rs.compacted_rv + 1)["message"]
                )
            for event in rs.window:
                if event.rv > since:
                    replayed = watcher.translate(event)
                    if replayed is not None:
                        watcher.buffer.append(replayed)
        rs.watchers.add(watcher)
        if watcher.buffer:
            watcher.wake.set()
        return watcher

    def close_watch(self, resource: str, watcher: Watcher) -> None:
        self.resources[resource].watchers.discard(watcher)

    def all_watchers(self) -> list[Watcher]:
        return [w for rs in self.resources.values() for w in rs.watchers]
