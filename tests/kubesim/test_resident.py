"""Resident pods: run until deleted and serve a WebSocket status channel."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from kubernetes import client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from kubesim.control import KubesimControl

from .conftest import RESIDENT, wait_for


def _resident_job(name: str, port: int = 8080) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"kubesim.io/resident": "true"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "svc",
                            "image": "meridian/worker:1",
                            "ports": [{"name": "status", "containerPort": port}],
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
def resident_pod(api_clients: Any) -> tuple[client.CoreV1Api, client.BatchV1Api, client.V1Pod]:
    api = api_clients(RESIDENT)
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    name = f"res-{uuid.uuid4().hex[:6]}"
    batch.create_namespaced_job("default", _resident_job(name))
    pod = wait_for(
        lambda: [
            p
            for p in core.list_namespaced_pod("default", label_selector=f"job-name={name}").items
            if p.status.phase == "Running"
        ]
    )[0]
    return core, batch, pod


async def _messages(url: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    async with connect(url, open_timeout=timeout) as ws:
        return [json.loads(await asyncio.wait_for(ws.recv(), timeout)) for _ in range(count)]


async def test_resident_pod_serves_heartbeats(resident_pod: Any) -> None:
    _, batch, pod = resident_pod
    url = f"ws://{pod.status.pod_ip}:8080/status"
    messages = await _messages(url, 2, timeout=3)
    assert [m["state"] for m in messages] == ["healthy", "healthy"]
    assert abs(messages[-1]["ts"] - time.time()) < 5
    assert 0.5 < messages[1]["ts"] - messages[0]["ts"] < 1.5
    # A resident pod keeps running well past the default job duration.
    job = batch.read_namespaced_job(pod.metadata.labels["job-name"], "default")
    assert job.status.active == 1 and not job.status.succeeded


async def test_status_state_is_settable(resident_pod: Any, control: KubesimControl) -> None:
    _, _, pod = resident_pod
    url = f"ws://{pod.status.pod_ip}:8080/status"
    control.set_pod_status(RESIDENT, "default", pod.metadata.name, "degraded")
    assert (await _messages(url, 1))[0]["state"] == "degraded"
    control.set_pod_status(RESIDENT, "default", pod.metadata.name, "failing")
    assert (await _messages(url, 1))[0]["state"] == "failing"


async def test_silent_keeps_the_socket_open_without_messages(
    resident_pod: Any, control: KubesimControl
) -> None:
    _, _, pod = resident_pod
    control.set_pod_status(RESIDENT, "default", pod.metadata.name, "silent")
    async with connect(f"ws://{pod.status.pod_ip}:8080/status") as ws:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.5)
        await ws.ping()  # still open
        control.set_pod_status(RESIDENT, "default", pod.metadata.name, "healthy")
        message = json.loads(await asyncio.wait_for(ws.recv(), 2.5))
        assert message["state"] == "healthy"


async def test_other_paths_are_404(resident_pod: Any) -> None:
    _, _, pod = resident_pod
    with pytest.raises(InvalidStatus) as err:
        async with connect(f"ws://{pod.status.pod_ip}:8080/other"):
            pass
    assert err.value.response.status_code == 404


async def test_deleting_the_job_closes_the_channel(resident_pod: Any) -> None:
    _, batch, pod = resident_pod
    async with connect(f"ws://{pod.status.pod_ip}:8080/status") as ws:
        await ws.recv()
        batch.delete_namespaced_job(
            pod.metadata.labels["job-name"], "default", propagation_policy="Background"
        )
        with pytest.raises(ConnectionClosed):
            for _ in range(5):
                await asyncio.wait_for(ws.recv(), 2)


async def test_region_outage_takes_the_channel_down_and_restore_brings_it_back(
    resident_pod: Any, control: KubesimControl
) -> None:
    _, _, pod = resident_pod
    url = f"ws://{pod.status.pod_ip}:8080/status"
    control.outage(RESIDENT)
    try:
        with pytest.raises(OSError):
            async with connect(url, open_timeout=2):
                pass
    finally:
        control.restore(RESIDENT)
    assert (await _messages(url, 1))[0]["state"] == "healthy"
