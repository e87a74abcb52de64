"""v1 Events for what the simulated controllers do, aggregated like client-go's recorder."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from kubesim.resources import EVENTS
from kubesim.types import Obj
from kubesim.util import new_uid, now_iso, random_suffix

if TYPE_CHECKING:
    from kubesim.store import Store


NORMAL, WARNING = "Normal", "Warning"


class EventRecorder:
    def __init__(self, store: Store, host: str, max_events: int = 5000) -> None:
        self.store = store
        self.host = host
        self.max_events = max_events
        # (uid, reason, message) -> (namespace, name): repeated events bump a count.
        self._recent: OrderedDict[tuple[str, str, str], tuple[str, str]] = OrderedDict()

    def record(self, involved: Obj, type_: str, reason: str, message: str, component: str) -> None:
        meta = involved["metadata"]
        uid = meta.get("uid", "")
        key = (uid, reason, message)
        existing = self._recent.get(key)
        stamp = now_iso()
        if existing is not None:

            def bump(event: Obj) -> None:
                event["count"] = int(event.get("count", 1)) + 1
                event["lastTimestamp"] = stamp

            if self.store.mutate(EVENTS.name, existing[0], existing[1], bump) is not None:
                self._recent.move_to_end(key)
                return
        namespace = meta.get("namespace") or "default"
        name = f"{meta['name']}.{random_suffix(8)}{int(time.time() * 1000) % 100000:05d}"
        event: Obj = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": new_uid(),
                "creationTimestamp": stamp,
            },
            "involvedObject": {
                "kind": involved.get("kind", ""),
                "namespace": meta.get("namespace", ""),
                "name": meta["name"],
                "uid": uid,
                "apiVersion": involved.get("apiVersion", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {
                "component": component,
                **({"host": self.host} if component == "kubelet" else {}),
            },  # noqa: E501
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": self.host,
        }
        if not meta.get("namespace"):
            event["involvedObject"].pop("namespace")
        self.store.create(EVENTS.name, event)
        self._recent[key] = (namespace, name)
        # Real clusters expire events after an hour; kubesim keeps the newest N.
        while len(self._recent) > self.max_events:
            _, (old_ns, old_name) = self._recent.popitem(last=False)
            self.store.delete(EVENTS.name, old_ns, old_name)
