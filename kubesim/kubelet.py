"""The kubelet of every node in one cluster: plays each pod's behaviour.

A pod's behaviour comes from its annotations (set on the Job's pod template):
``kubesim.io/duration`` (default: the regions file's job_duration),
``kubesim.io/exit-code`` (default 0) and ``kubesim.io/resident: "true"`` (runs until
deleted). Timers are per pod (``loop.call_later``); nothing polls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kubesim.config import parse_duration
from kubesim.events import NORMAL, WARNING
from kubesim.ipam import IpAllocator
from kubesim.protocols import KubeletCluster
from kubesim.resident import StatusServer
from kubesim.resources import PODS
from kubesim.store import DELETED
from kubesim.types import Key, Obj
from kubesim.util import now_iso, parse_iso

log = logging.getLogger(__name__)

DURATION = "kubesim.io/duration"
EXIT_CODE = "kubesim.io/exit-code"
RESIDENT = "kubesim.io/resident"
TERMINAL = ("Succeeded", "Failed")


@dataclass(slots=True)
class PodRuntime:
    key: Key
    node: str
    started: bool = False
    deferred: str | None = None  # "start" or "finish" while the node is NotReady
    timer: asyncio.TimerHandle | None = None
    terminating: bool = False
    status_server: StatusServer | None = None
    started_at: str = ""
    run_started: float = 0.0  # wall clock when the current container run began
    extra: dict[str, Any] = field(default_factory=dict)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _container_id(key: Key, name: str, restart: int) -> str:
    digest = hashlib.sha256(f"{key}/{name}/{restart}/{time.time()}".encode()).hexdigest()
    return f"containerd://{digest}"


def _image_id(image: str) -> str:
    return f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def behaviour(pod: Obj, default_duration: float) -> tuple[float, int, bool]:
    annotations = pod["metadata"].get("annotations") or {}
    try:
        duration = parse_duration(annotations.get(DURATION), default_duration)
    except ValueError:
        duration = default_duration
    try:
        exit_code = int(annotations.get(EXIT_CODE, 0))
    except ValueError:
        exit_code = 1
    resident = str(annotations.get(RESIDENT, "")).lower() == "true"
    return duration, exit_code, resident


def status_port(pod: Obj) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "status" and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return None


def _run_started_of(status: Obj, default: float) -> float:
    """When the current container run began, from the pod status (second precision)."""
    for cs in status.get("containerStatuses") or []:
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt")
        if started:
            return parse_iso(str(started))
    started = status.get("startTime")
    return parse_iso(str(started)) if started else default


def _set_condition(
    status: Obj, type_: str, value: str, stamp: str, reason: str | None = None
) -> None:  # noqa: E501
    conditions = status.setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == type_:
            if condition.get("status") != value:
                condition["lastTransitionTime"] = stamp
            condition["status"] = value
            if reason:
                condition["reason"] = reason
            else:
                condition.pop("reason", None)
            return
    new: Obj = {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": stamp}
    if reason:
        new["reason"] = reason
    conditions.append(new)


# ---- status builders: what a pod's status says at each step of its life -------------------
_STARTED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


def _exit_reason(exit_code: int) -> str:
    return "Completed" if exit_code == 0 else "Error"


def _running_container(container: Obj, key: Key, stamp: str) -> Obj:
    return {
        "name": container["name"],
        "state": {"running": {"startedAt": stamp}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": container.get("image", ""),
        "imageID": _image_id(str(container.get("image", ""))),
        "containerID": _container_id(key, container["name"], 0),
        "started": True,
    }


def _exited(cs: Obj, exit_code: int, stamp: str) -> Obj:
    """The ``terminated`` state of a container whose current run exits now."""
    started = (cs.get("state") or {}).get("running", {}).get("startedAt", stamp)
    return {
        "exitCode": exit_code,
        "reason": _exit_reason(exit_code),
        "startedAt": started,
        "finishedAt": stamp,
        "containerID": cs.get("containerID", ""),
    }


def _lost(cs: Obj, stamp: str) -> Obj:
    """The ``terminated`` state of a container on a lost node: nobody saw it exit."""
    started = (cs.get("state") or {}).get("running", {}).get("startedAt")
    terminated: Obj = {
        "exitCode": 137,
        "reason": "ContainerStatusUnknown",
        "message": "The container could not be located when the pod was terminated",
        "finishedAt": stamp,
    }
    if started:
        terminated["startedAt"] = started
    return terminated


def _never_started(container: Obj) -> Obj:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "restartCount": 0,
        "ready": False,
        "started": False,
        "lastState": {},
    }


def _set_running(pod: Obj, key: Key, ip: str, node_ip: str, stamp: str) -> None:
    status = pod.setdefault("status", {})
    status["phase"] = "Running"
    status["hostIP"] = node_ip
    status["hostIPs"] = [{"ip": node_ip}]
    status["podIP"] = ip
    status["podIPs"] = [{"ip": ip}]
    status["startTime"] = stamp
    for type_ in _STARTED_CONDITIONS:
        _set_condition(status, type_, "True", stamp)
    _set_condition(status, "PodScheduled", "True", stamp)
    status["containerStatuses"] = [
        _running_container(c, key, stamp) for c in pod["spec"].get("containers") or []
    ]


def _set_exited(pod: Obj, exit_code: int, stamp: str) -> None:
    """The containers exited and the restart policy keeps them down: the pod is done."""
    status = pod.setdefault("status", {})
    status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    ready_reason = "PodCompleted" if exit_code == 0 else "PodFailed"
    for type_ in ("Ready", "ContainersReady"):
        _set_condition(status, type_, "False", stamp, ready_reason)
    _set_condition(status, "PodReadyToStartContainers", "False", stamp)
    for cs in status.get("containerStatuses") or []:
        cs["state"] = {"terminated": _exited(cs, exit_code, stamp)}
        cs["ready"] = False
        cs["started"] = False


def _set_restarted(pod: Obj, key: Key, exit_code: int, stamp: str) -> None:
    """The containers exited and were started again in place: the pod stays Running."""
    status = pod.setdefault("status", {})
    for cs in status.get("containerStatuses") or []:
        count = int(cs.get("restartCount", 0)) + 1
        cs["lastState"] = {"terminated": _exited(cs, exit_code, stamp)}
        cs["restartCount"] = count
        cs["containerID"] = _container_id(key, cs["name"], count)
        cs["state"] = {"running": {"startedAt": stamp}}


def _set_node_lost(pod: Obj, message: str, stamp: str) -> None:
    status = pod.setdefault("status", {})
    status["phase"] = "Failed"
    status["reason"] = "NodeLost"
    status["message"] = message
    for type_ in ("Ready", "ContainersReady"):
        _set_condition(status, type_, "False", stamp, "PodFailed")
    _set_condition(status, "DisruptionTarget", "True", stamp, "DeletionByTaintManager")
    # A pod lost before it started has no container statuses yet: report each container.
    statuses = status.get("containerStatuses") or [
        _never_started(c) for c in pod["spec"].get("containers") or []
    ]
    for cs in statuses:
        cs["state"] = {"terminated": _lost(cs, stamp)}
        cs["ready"] = False
        cs["started"] = False
    status["containerStatuses"] = statuses


class Kubelet:
    def __init__(self, cluster: KubeletCluster, ips: IpAllocator) -> None:
        self.cluster = cluster
        self.ips = ips
        self.pods: dict[Key, PodRuntime] = {}
        self.eviction_timers: dict[str, asyncio.TimerHandle] = {}
        self.paused = False  # region outage: status endpoints are unreachable too
        self.desired_states: dict[Key, str] = {}
        cluster.store.listen(PODS.name, self._on_pod)

    # ---- pod events -------------------------------------------------------------
    def _on_pod(self, type_: str, pod: Obj, prev: Obj | None) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        runtime = self.pods.get(key)
        if type_ == DELETED:
            if runtime is not None:
                self._forget(runtime)
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        phase = (pod.get("status") or {}).get("phase")
        if meta.get("deletionTimestamp"):
            if runtime is None:
                runtime = self.pods[key] = PodRuntime(key, node)
            if not runtime.terminating:
                runtime.terminating = True
                runtime.cancel()
                self._stop_status_server(runtime)
                grace = float(meta.get("deletionGracePeriodSeconds") or 0)
                delay = min(grace, self.cluster.defaults.termination_delay)
                if phase in TERMINAL:
                    delay = 0.0
                runtime.timer = asyncio.get_running_loop().call_later(delay, self._remove, key)
            return
        if runtime is None and phase == "Pending":
            runtime = self.pods[key] = PodRuntime(key, node)
            self._schedule(runtime, self._start_delay(node), self._start)

    def _start_delay(self, node: str) -> float:
        """Binding to running: the image pull, or a serverless pod's declared cold start."""
        state = self.cluster.nodes.get(node)
        if state is not None and state.virtual is not None:
            return state.virtual.cold_start
        return self.cluster.defaults.pod_start_delay

    def _schedule(self, runtime: PodRuntime, delay: float, action: Any) -> None:
        runtime.cancel()
        runtime.timer = asyncio.get_running_loop().call_later(delay, action, runtime.key)

    def _forget(self, runtime: PodRuntime) -> None:
        self.desired_states.pop(runtime.key, None)
        runtime.cancel()
        self._stop_status_server(runtime)
        self.pods.pop(runtime.key, None)

    def _stop_status_server(self, runtime: PodRuntime) -> None:
        server, runtime.status_server = runtime.status_server, None
        if server is not None:
            self.cluster.spawn(server.stop())

    def _node_ready(self, node: str) -> bool:
        state = self.cluster.nodes.get(node)
        return state is not None and state.ready

    def _current(self, key: Key) -> Obj | None:
        pod = self.cluster.store.get(PODS.name, *key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            return None
        return pod

    # ---- lifecycle ---------------------------------------------------------------
    def _start(self, key: Key) -> None:
        runtime = self.pods.get(key)
        pod = self._current(key)
        if runtime is None or pod is None:
            return
        runtime.timer = None
        if not self._node_ready(runtime.node):
            runtime.deferred = "start"
            return
        duration, _, resident = behaviour(pod, self.cluster.defaults.job_duration)
        port = status_port(pod)
        ip = self.ips.pod_ip()
        if resident and port is not None:
            runtime.status_server = StatusServer(ip, port)
            runtime.status_server.state = self.desired_states.get(key, "healthy")
            self.cluster.spawn(self._start_resident(key, ip, runtime.status_server))
            return
        self._mark_running(key, ip)
        if not resident:
            self._schedule(runtime, duration, self._finish)

    async def _start_resident(self, key: Key, ip: str, server: StatusServer) -> None:
        # Listen before reporting Running so that a client that sees Running can connect.
        if not self.paused:
            await server.start()
        if self.pods.get(key) is not None and self._current(key) is not None:
            self._mark_running(key, ip)
        else:
            await server.stop()

    def _mark_running(self, key: Key, ip: str) -> None:
        runtime = self.pods[key]
        now = time.time()
        stamp = now_iso(now)
        runtime.started = True
        runtime.started_at = stamp
        runtime.run_started = now
        node_ip = self.cluster.node_ip(runtime.node)
        run = partial(_set_running, key=key, ip=ip, node_ip=node_ip, stamp=stamp)
        pod = self.cluster.store.mutate(PODS.name, key[0], key[1], run)
        if pod is not None:
            self._record_started(pod)

    def _record_started(self, pod: Obj) -> None:
        record = self.cluster.events.record
        for container in pod["spec"].get("containers") or []:
            image, name = container.get("image", ""), container["name"]
            pulled = f'Container image "{image}" already present on machine'
            record(pod, NORMAL, "Pulled", pulled, "kubelet")
            record(pod, NORMAL, "Created", f"Created container: {name}", "kubelet")
            record(pod, NORMAL, "Started", f"Started container {name}", "kubelet")

    def _finish(self, key: Key) -> None:
        runtime = self.pods.get(key)
        pod = self._current(key)
        if runtime is None or pod is None:
            return
        runtime.timer = None
        if not self._node_ready(runtime.node):
            # A NotReady node cannot report; the exit is seen when it comes back.
            runtime.deferred = "finish"
            return
        duration, exit_code, _ = behaviour(pod, self.cluster.defaults.job_duration)
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
            self._restart(runtime, exit_code, duration)
            return
        exit_ = partial(_set_exited, exit_code=exit_code, stamp=now_iso())
        self.cluster.store.mutate(PODS.name, key[0], key[1], exit_)
        self._stop_status_server(runtime)

    def _restart(self, runtime: PodRuntime, exit_code: int, duration: float) -> None:
        now = time.time()
        key = runtime.key
        runtime.run_started = now
        restart = partial(_set_restarted, key=key, exit_code=exit_code, stamp=now_iso(now))
        pod = self.cluster.store.mutate(PODS.name, key[0], key[1], restart)
        if pod is not None and exit_code != 0:
            self.cluster.events.record(
                pod, WARNING, "BackOff", "Back-off restarting failed container", "kubelet"
            )
        self._schedule(runtime, duration, self._finish)

    def _remove(self, key: Key) -> None:
        self.cluster.store.delete(PODS.name, *key)

    # ---- node health ----------------------------------------------------------------
    def node_readiness_changed(self, node: str, ready: bool) -> None:
        loop = asyncio.get_running_loop()
        timer = self.eviction_timers.pop(node, None)
        if timer is not None:
            timer.cancel()
        if not ready:
            self.eviction_timers[node] = loop.call_later(
                self.cluster.defaults.eviction_delay, self.evict_node, node
            )
            return
        for runtime in list(self.pods.values()):
            if runtime.node == node and runtime.deferred:
                action = self._start if runtime.deferred == "start" else self._finish
                runtime.deferred = None
                self._schedule(runtime, 0.0, action)

    def evict_node(self, node: str, pods: list[Key] | None = None) -> None:
        """Fail every pod still on ``node`` with reason NodeLost (node lost or removed)."""
        self.eviction_timers.pop(node, None)
        if pods is None:
            state = self.cluster.nodes.get(node)
            pods = sorted(state.pods) if state else []
        stamp = now_iso()
        for key in pods:
            runtime = self.pods.get(key)
            if runtime is not None:
                runtime.cancel()
                runtime.deferred = None
                self._stop_status_server(runtime)
            if self._current(key) is None:
                continue
            message = f"Node {node} which was running pod {key[1]} is unresponsive"
            lose = partial(_set_node_lost, message=message, stamp=stamp)
            lost = self.cluster.store.mutate(PODS.name, key[0], key[1], lose)
            if lost is not None:
                self.cluster.events.record(lost, WARNING, "NodeLost", message, "node-controller")

    # ---- durable state (kubesim.state) ----------------------------------------------------
    def capture(self) -> Obj:
        """What the pod objects do not say: precise run starts, heartbeat states, and
        pending evictions (as wall-clock times)."""
        loop = asyncio.get_running_loop()
        offset = time.time() - loop.time()
        return {
            "run_started": [
                [key[0], key[1], runtime.run_started]
                for key, runtime in self.pods.items()
                if runtime.run_started
            ],
            "status_states": [[k[0], k[1], v] for k, v in self.desired_states.items()],
            "evictions": {
                node: timer.when() + offset for node, timer in self.eviction_timers.items()
            },
        }

    def restore(self, saved: Obj) -> list[StatusServer]:
        """Resume every restored Running pod; returns the resident status servers to start.

        Pending pods were resumed by ``_on_pod`` when the store replayed them, and pods
        with a deletionTimestamp are being removed. A Running pod runs for what is left of
        its duration, measured from when its current container run started (wall clock);
        if that is already past, it finishes now.
        """
        loop = asyncio.get_running_loop()
        now = time.time()
        run_started = {(ns, name): float(t) for ns, name, t in saved.get("run_started") or []}
        for ns, name, state in saved.get("status_states") or []:
            self.desired_states[(ns, name)] = str(state)
        servers: list[StatusServer] = []
        lost: dict[str, list[Key]] = {}
        for entry in list(self.cluster.store[PODS.name].entries()):
            pod = entry.obj
            status = pod.get("status") or {}
            ip = status.get("podIP")
            if ip:
                self.ips.reserve_pod_ip(str(ip))
            meta = pod["metadata"]
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or meta.get("deletionTimestamp") or status.get("phase") in TERMINAL:
                continue
            key = (meta["namespace"], meta["name"])
            if node not in self.cluster.nodes:
                lost.setdefault(str(node), []).append(key)
                continue
            if status.get("phase") != "Running" or key in self.pods:
                continue
            runtime = self.pods[key] = PodRuntime(key, str(node), started=True)
            runtime.started_at = str(status.get("startTime") or "")
            runtime.run_started = run_started.get(key) or _run_started_of(status, now)
            duration, _, resident = behaviour(pod, self.cluster.defaults.job_duration)
            if resident:
                port = status_port(pod)
                if port is not None and ip:
                    runtime.status_server = StatusServer(str(ip), port)
                    runtime.status_server.state = self.desired_states.get(key, "healthy")
                    servers.append(runtime.status_server)
                continue
            remaining = max(0.0, runtime.run_started + duration - now)
            self._schedule(runtime, remaining, self._finish)
        for node, keys in lost.items():
            loop.call_soon(self.evict_node, node, keys)
        for node, at in (saved.get("evictions") or {}).items():
            state = self.cluster.nodes.get(node)
            if state is not None and not state.ready:
                self.eviction_timers[node] = loop.call_later(
                    max(0.0, float(at) - now), self.evict_node, node
                )
        return servers

    # ---- resident status channel -------------------------------------------------------
    def set_status_state(self, key: Key, state: str) -> None:
        self.desired_states[key] = state
        server = self.status_server(key)
        if server is not None:
            server.state = state

    def status_server(self, key: Key) -> StatusServer | None:
        runtime = self.pods.get(key)
        return runtime.status_server if runtime else None

    async def pause(self) -> None:
        """Region outage: resident pods' endpoints go dark with the rest of the region."""
        self.paused = True
        for runtime in list(self.pods.values()):
            if runtime.status_server is not None:
                await runtime.status_server.stop()

    async def resume(self) -> None:
        self.paused = False
        for runtime in list(self.pods.values()):
            if runtime.status_server is not None and not runtime.terminating:
                await runtime.status_server.start()
