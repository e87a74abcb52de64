"""The workers' health endpoint, which the manifests' probes call."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from meridian.app.health import HealthServer, start_worker_health, worker_checks
from meridian.settings import Settings


async def _get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"http://127.0.0.1:{port}{path}", timeout=10)


async def test_alive_while_not_ready_and_ready_once_the_checks_pass() -> None:
    answers = {"temporal": "error: RPCError"}

    async def checks() -> dict[str, str]:
        return dict(answers)

    server = HealthServer(checks, host="127.0.0.1", port=0)
    port = await server.start()
    try:
        assert (await _get(port, "/healthz")).status_code == 200
        not_ready = await _get(port, "/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {"status": "unavailable", "checks": answers}
        answers["temporal"] = "ok"
        ready = await _get(port, "/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        assert (await _get(port, "/other")).status_code == 404
    finally:
        await server.close()


async def test_a_check_that_raises_or_hangs_is_not_ready() -> None:
    async def hangs() -> dict[str, str]:
        await asyncio.sleep(3600)
        return {}

    server = HealthServer(hangs, host="127.0.0.1", port=0, check_timeout=0.2)
    port = await server.start()
    try:
        answer = await _get(port, "/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"] == {"readiness": "error: no answer in time"}
    finally:
        await server.close()


async def test_port_zero_serves_nothing() -> None:
    # `meridian up` runs several workers on one machine: no port unless configured.
    worker = asyncio.create_task(asyncio.sleep(3600))
    try:
        assert await start_worker_health(Settings(worker_health_port=0), worker) is None
    finally:
        worker.cancel()


async def test_worker_checks_follow_temporal_and_the_worker(dev_env: WorkflowEnvironment) -> None:
    address = dev_env.client.service_client.config.target_host
    worker = asyncio.create_task(asyncio.sleep(3600))
    checks = worker_checks(Settings(temporal_address=address), worker)
    try:
        assert await checks() == {"worker": "ok", "temporal": "ok"}
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        assert (await checks())["worker"] == "stopped"
    finally:
        worker.cancel()


async def test_unreachable_temporal_is_not_ready() -> None:
    worker = asyncio.create_task(asyncio.sleep(3600))
    checks = worker_checks(Settings(temporal_address="127.0.0.1:1"), worker)
    try:
        assert (await checks())["temporal"].startswith("error")
    finally:
        worker.cancel()


def test_the_port_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERIDIAN_WORKER_HEALTH_PORT", "8080")
    assert Settings().worker_health_port == 8080
    monkeypatch.delenv("MERIDIAN_WORKER_HEALTH_PORT")
    assert Settings().worker_health_port == 0
