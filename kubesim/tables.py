"""Server-side printing (meta.k8s.io/v1 Table) so that ``kubectl get`` shows real columns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubesim.resources import ResourceType
from kubesim.types import Obj
from kubesim.util import parse_iso

Column = tuple[str, str, int]  # name, type, priority
Printer = tuple[list[Column], Callable[[Obj], list[Any]]]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_duration(seconds: float) -> str:
    """kubectl's duration.HumanDuration."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def _age(obj: Obj) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    return human_duration(time.time() - parse_iso(stamp)) if stamp else "<unknown>"


def _pod_status(pod: Obj) -> str:
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase", "Pending")
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and status.get("phase") != "Running":
            reason = status.get("reason") or state["terminated"].get("reason", reason)
    if status.get("phase") == "Pending" and (pod.get("spec") or {}).get("nodeName"):
        return "ContainerCreating"
    return str(reason)


def _pod_row(pod: Obj) -> list[Any]:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount", 0)) for cs in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        _pod_status(pod),
        restarts,
        _age(pod),
        status.get("podIP", "<none>"),
        (pod.get("spec") or {}).get("nodeName", "<none>"),  # noqa: E501
        "<none>",
        "<none>",
    ]


def _job_row(job: Obj) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    state = "Running"
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            state = "Complete"
        elif condition.get("type") == "Failed":
            state = "Failed"
        elif condition.get("type") == "Suspended":
            state = "Suspended"
        elif condition.get("type") == "FailureTarget" and state == "Running":
            state = "FailureTarget"
    completions = spec.get("completions")
    done = f"{status.get('succeeded', 0)}/{completions if completions is not None else 1}"
    duration = ""
    if status.get("startTime"):
        end = parse_iso(status["completionTime"]) if status.get("completionTime") else time.time()
        duration = human_duration(end - parse_iso(status["startTime"]))
    containers = (spec.get("template") or {}).get("spec", {}).get("containers") or []
    selector = ",".join(
        f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items()
    )  # noqa: E501
    return [
        job["metadata"]["name"],
        state,
        done,
        duration,
        _age(job),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        selector,
    ]


def _node_row(node: Obj) -> list[Any]:
    status = node.get("status") or {}
    ready = "Unknown"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            ready = "Ready" if condition.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        ready += ",SchedulingDisabled"
    info = status.get("nodeInfo") or {}
    internal = next(
        (a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"),
        "<none>",
    )  # noqa: E501
    return [
        node["metadata"]["name"],
        ready,
        "<none>",
        _age(node),
        info.get("kubeletVersion", ""),
        internal,
        "<none>",
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


def _namespace_row(ns: Obj) -> list[Any]:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"), _age(ns)]


def _event_row(event: Obj) -> list[Any]:
    last = event.get("lastTimestamp") or event["metadata"].get("creationTimestamp")
    involved = event.get("involvedObject") or {}
    return [
        human_duration(time.time() - parse_iso(last)) if last else "<unknown>",
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        event.get("message", ""),
    ]


def _pdb_row(pdb: Obj) -> list[Any]:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    return [
        pdb["metadata"]["name"],
        str(spec.get("minAvailable", "N/A")),
        str(spec.get("maxUnavailable", "N/A")),
        status.get("disruptionsAllowed", 0),
        _age(pdb),
    ]


PRINTERS: dict[str, Printer] = {
    "pods": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod_row,
    ),
    "jobs": (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _job_row,
    ),
    "nodes": (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        _node_row,
    ),
    "namespaces": (
        [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
        _namespace_row,
    ),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _event_row,
    ),
    "poddisruptionbudgets": (
        [
            ("Name", "string", 0),
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            ("Age", "string", 0),
        ],
        _pdb_row,
    ),
}


def table(
    rt: ResourceType,
    objects: list[Obj],
    resource_version: str,
    include_object: str = "Metadata",
    continue_token: str | None = None,
) -> Obj:
    columns, row = PRINTERS.get(
        rt.name,
        ([("Name", "string", 0), ("Age", "string", 0)], lambda o: [o["metadata"]["name"], _age(o)]),
    )
    rows = []
    for obj in objects:
        entry: Obj = {"cells": row(obj)}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(entry)
    meta: Obj = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {
                "name": name,
                "type": type_,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, type_, priority in columns
        ],
        "rows": rows,
    }
