"""Core v1 subresources with behaviour of their own: pods/log and pods/eviction."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from kubesim import errors
from kubesim.kubelet import behaviour, status_port
from kubesim.resources import PDBS, PODS
from kubesim.rest import Target, json_response, read_body
from kubesim.selectors import LabelSelector
from kubesim.types import Obj
from kubesim.util import now_iso

if TYPE_CHECKING:
    from kubesim.cluster import Cluster

FOLLOW_POLL = 0.2


def _container(pod: Obj, requested: str | None) -> Obj:
    containers = (pod.get("spec") or {}).get("containers") or []
    name = pod["metadata"]["name"]
    if requested:
        for container in containers:
            if container.get("name") == requested:
                return dict(container)
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    if len(containers) != 1:
        names = " ".join(c.get("name", "") for c in containers)
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{names}]"
        )
    return dict(containers[0])


def _log_lines(cluster: Cluster, pod: Obj, container: Obj, with_end: bool) -> list[str]:
    status = pod.get("status") or {}
    cs: Obj = next(
        (
            c
            for c in status.get("containerStatuses") or []
            if c.get("name") == container.get("name")
        ),
        {},
    )
    state = cs.get("state") or {}
    started = (state.get("running") or state.get("terminated") or {}).get("startedAt", "")
    duration, exit_code, resident = behaviour(pod, cluster.defaults.job_duration)
    lines = [
        f"kubesim: container {container.get('name')} (image {container.get('image')}) started "
        f"on node {(pod.get('spec') or {}).get('nodeName')} at {started}",
    ]
    command = list(container.get("command") or []) + list(container.get("args") or [])
    if command:
        lines.append("kubesim: command: " + " ".join(str(c) for c in command))
    for env in container.get("env") or []:
        if "value" in env:
            lines.append(f"kubesim: env {env.get('name')}={env.get('value')}")
    if resident:
        port = status_port(pod)
        where = f"; status at ws://{status.get('podIP')}:{port}/status" if port else ""
        lines.append(f"kubesim: resident service running{where}")
    else:
        lines.append(f"kubesim: working for {duration:g}s")
    terminated = state.get("terminated")
    if with_end and terminated:
        lines.append(
            f"kubesim: exited with code {terminated.get('exitCode')} at "
            f"{terminated.get('finishedAt')}"
        )
    return lines


async def pod_log(request: web.Request, cluster: Cluster, target: Target) -> web.StreamResponse:
    assert target.name is not None and target.namespace is not None
    cluster.stats.record("get", "pods/log")
    pod = cluster.store.get(PODS.name, target.namespace, target.name)
    if pod is None:
        raise errors.not_found(PODS.name, "", target.name)
    container = _container(pod, request.query.get("container"))
    status = pod.get("status") or {}
    if status.get("phase") == "Pending" or not status.get("containerStatuses"):
        raise errors.bad_request(
            f'container "{container.get("name")}" in pod "{target.name}" is waiting to start: '
            f"ContainerCreating"
        )
    lines = _log_lines(cluster, pod, container, with_end=True)
    tail = request.query.get("tailLines")
    if tail and tail.isdigit():
        lines = lines[-int(tail) :] if int(tail) else []
    follow = request.query.get("follow", "").lower() in ("1", "true")
    if not follow or status.get("phase") in ("Succeeded", "Failed"):
        body = "".join(line + "\n" for line in lines)
        return web.Response(text=body, content_type="text/plain")
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write("".join(line + "\n" for line in lines).encode())
    while True:
        await asyncio.sleep(FOLLOW_POLL)
        current = cluster.store.get(PODS.name, target.namespace, target.name)
        if current is None:
            break
        if (current.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            final = _log_lines(cluster, current, container, with_end=True)[-1]
            await response.write((final + "\n").encode())
            break
    await response.write_eof()
    return response


def _pod_can_ignore_pdb(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(
        pod["metadata"].get("deletionTimestamp")
    )  # noqa: E501


async def pod_eviction(
    request: web.Request, cluster: Cluster, target: Target
) -> web.StreamResponse:  # noqa: E501
    """policy/v1 Eviction: delete the pod unless a PodDisruptionBudget forbids it (429)."""
    assert target.name is not None and target.namespace is not None
    cluster.stats.record("create", "pods/eviction")
    body = await read_body(request) or {}
    pod = cluster.store.get(PODS.name, target.namespace, target.name)
    if pod is None:
        raise errors.not_found(PODS.name, "", target.name)
    options = body.get("deleteOptions") or {}
    grace = options.get("gracePeriodSeconds")
    if not _pod_can_ignore_pdb(pod):
        labels = pod["metadata"].get("labels") or {}
        budgets = [
            e.obj
            for e in cluster.store[PDBS.name].entries(target.namespace)
            if not LabelSelector.from_label_selector(
                (e.obj.get("spec") or {}).get("selector")
            ).empty  # noqa: E501
            and LabelSelector.from_label_selector(e.obj["spec"]["selector"]).matches(labels)
        ]
        if len(budgets) > 1:
            raise errors.internal_error(
                "This pod has more than one PodDisruptionBudget, which the eviction "
                "subresource does not support."
            )
        if budgets:
            pdb = budgets[0]
            name = pdb["metadata"]["name"]
            pdb = cluster.pdbs.sync(target.namespace, name) or pdb
            status = pdb.get("status") or {}
            if int(status.get("disruptionsAllowed", 0)) <= 0:
                error = errors.too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.", None
                )
                error.status["details"] = {
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": f"The disruption budget {name} needs "
                            f"{status.get('desiredHealthy', 0)} healthy pods and has "
                            f"{status.get('currentHealthy', 0)} currently",
                        }
                    ]
                }
                raise error

            def disrupt(obj: Obj) -> None:
                st = obj.setdefault("status", {})
                st["disruptionsAllowed"] = max(0, int(st.get("disruptionsAllowed", 0)) - 1)
                disrupted = dict(st.get("disruptedPods") or {})
                disrupted[target.name or ""] = now_iso()
                st["disruptedPods"] = disrupted

            cluster.store.mutate(PDBS.name, target.namespace, name, disrupt)
    cluster.delete_pod(target.namespace, target.name, None if grace is None else int(grace))
    return json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
        201,
    )
