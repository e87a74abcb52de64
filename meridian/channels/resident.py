"""Status channel 2: a WebSocket to each resident task's pod.

Once a resident task's pod runs, the unit worker connects to
`ws://<podIP>:<status port>/status`, turns the pod's state messages (healthy, degraded,
failing) into signals, and reconnects with backoff. Silence past the heartbeat timeout
makes the task *suspect*, never dead: the Kubernetes API is asked whether the pod still
runs, and only a pod that is gone makes the task move.

A message the channel cannot read (not JSON, not an object, a state it does not know)
is logged and skipped, never fatal: one bad frame from a pod must not blind Meridian to
everything the pod says after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import websockets
from temporalio.client import Client

from meridian.channels.signals import signal_task
from meridian.kube.contracts import JobObservation, JobPhase
from meridian.kube.errors import KubeError
from meridian.kube.gateway import JobGateway
from meridian.settings import FailoverSettings
from meridian.tasks.contracts import (
    SIGNAL_INFRA_FAILURE,
    SIGNAL_RESIDENT_STATUS,
    InfraFailure,
    ResidentStatus,
)

log = logging.getLogger(__name__)

# What a pod may say of itself ("suspect" is the channel's own verdict, never the pod's).
POD_STATES = frozenset({"healthy", "degraded", "failing"})
# How much of an unreadable message the log shows: enough to recognise it, no more.
_SHOWN = 120


class MalformedStatus(ValueError):
    """A status message that is not `{"state": <one of POD_STATES>, ...}`."""


def parse_status(raw: str | bytes) -> str:
    """The state a pod's status message announces; a message without one is a heartbeat."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, absurdly nested
        raise MalformedStatus(f"not JSON ({type(exc).__name__})") from exc
    if not isinstance(message, dict):
        raise MalformedStatus(f"a JSON {type(message).__name__}, not an object")
    state = message.get("state", "healthy")
    if not isinstance(state, str) or state not in POD_STATES:
        raise MalformedStatus(f"unknown state {_excerpt(state)}")
    return state


def _excerpt(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOWN else f"{shown[:_SHOWN]}... ({len(shown)} chars)"


class ResidentChannels:
    def __init__(
        self, client: Client, gateway: JobGateway, namespace: str, failover: FailoverSettings
    ):
        self.client = client
        self.gateway = gateway
        self.namespace = namespace
        self.heartbeat_timeout = failover.resident_heartbeat_timeout_seconds
        self._channels: dict[str, asyncio.Task[None]] = {}
        # Channel -> (region, last state) for the metrics; "connecting" until the pod
        # first speaks.
        self._states: dict[str, tuple[str, str]] = {}

    @property
    def open_channels(self) -> int:
        return len(self._channels)

    def counts(self) -> dict[tuple[str, ...], float]:
        """Open channels by (region, state): meridian_resident_channels."""
        counts: Counter[tuple[str, ...]] = Counter(self._states.values())
        return {key: float(n) for key, n in counts.items()}

    def observe(self, obs: JobObservation) -> None:
        """Open a channel when a resident Job runs; close it when the Job ends."""
        if obs.status_port is None:
            return
        key = f"{obs.region}/{obs.job_name}"
        if obs.phase is JobPhase.RUNNING:
            if key not in self._channels:
                task = asyncio.create_task(self._follow(obs), name=f"resident-{key}")
                self._channels[key] = task
                self._states[key] = (obs.region, "connecting")
                task.add_done_callback(self._forget(key))
        else:
            existing = self._channels.pop(key, None)
            self._states.pop(key, None)
            if existing is not None:
                existing.cancel()

    def _forget(self, key: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self._channels.pop(key, None)
            self._states.pop(key, None)

        return forget

    async def close(self) -> None:
        tasks = list(self._channels.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pod(self, obs: JobObservation) -> dict[str, Any] | None:
        """The attempt's running pod, or None when it is gone or has ended."""
        pods = await asyncio.to_thread(
            self.gateway.job_pods, obs.region, obs.namespace or self.namespace, obs.job_name
        )
        for pod in pods:
            if (pod.get("status") or {}).get("phase") == "Running":
                return pod
        return None

    async def _follow(self, obs: JobObservation) -> None:
        backoff = 0.5
        last_state: str | None = None
        while True:
            try:
                pod = await self._pod(obs)
            except KubeError as exc:
                # The API is unreachable: that is the region monitor's call, not ours.
                log.info("resident %s: API unreachable (%s)", obs.job_name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if pod is None:
                await self._infra(obs, "resident pod gone (confirmed by the Kubernetes API)")
                return
            ip = (pod.get("status") or {}).get("podIP")
            url = f"ws://{ip}:{obs.status_port}/status"
            try:
                async with websockets.connect(url, open_timeout=3, close_timeout=1) as ws:
                    backoff = 0.5
                    unreadable = 0  # in a row: a pod that only talks nonsense warns once
                    while True:
                        raw = await asyncio.wait_for(ws.recv(), timeout=self.heartbeat_timeout)
                        # Any frame shows the pod alive; only a readable one says how it is.
                        state = self._read(obs, raw, warn=unreadable == 0)
                        unreadable = unreadable + 1 if state is None else 0
                        if state is not None and state != last_state:
                            last_state = state
                            self._mark(obs, state)
                            await self._status(obs, state)
            except TimeoutError:
                # Silence: suspect. Ask the API before anything drastic.
                if last_state != "suspect":
                    last_state = "suspect"
                    self._mark(obs, "suspect")
                    await self._status(obs, "suspect", "no heartbeat; verifying with the API")
            except (OSError, websockets.WebSocketException, ValueError) as exc:
                log.info("resident %s: channel lost (%s); reconnecting", obs.job_name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _mark(self, obs: JobObservation, state: str) -> None:
        key = f"{obs.region}/{obs.job_name}"
        if key in self._channels:
            self._states[key] = (obs.region, state)

    @staticmethod
    def _read(obs: JobObservation, raw: str | bytes, *, warn: bool) -> str | None:
        try:
            return parse_status(raw)
        except MalformedStatus as exc:
            log.log(
                logging.WARNING if warn else logging.DEBUG,
                "resident %s: status message skipped, %s: %s",
                obs.job_name,
                exc,
                _excerpt(raw),
            )
            return None

    async def _status(self, obs: JobObservation, state: str, detail: str | None = None) -> None:
        status = ResidentStatus(attempt=obs.attempt, state=state, detail=detail)
        await signal_task(self.client, obs.task_id, SIGNAL_RESIDENT_STATUS, status)

    async def _infra(self, obs: JobObservation, reason: str) -> None:
        failure = InfraFailure(region=obs.region, attempt=obs.attempt, reason=reason)
        await signal_task(self.client, obs.task_id, SIGNAL_INFRA_FAILURE, failure)
