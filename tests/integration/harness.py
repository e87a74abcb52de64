"""The whole engine in the test process, against real parts.

Real Temporal dev server (session fixture), real kubesim (subprocess), a real database
(MariaDB or SQLite), the real central and unit workers and the real API over HTTP on a
free port. Only the wiring is the test's; every component is the production one.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from temporalio.client import Client

from api.main import create_app
from meridian.regions.config import load_regions
from meridian.scaling.loop import ensure_region_control
from meridian.settings import FailoverSettings, Settings, SweepSettings
from meridian.store import Store
from meridian.sweeps.schedules import ensure_sweep_schedules
from tests.support import token_headers
from workers.central import build_central_workers, ensure_region_monitor
from workers.unit import run_units


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def engine_settings(
    *,
    database_url: str,
    temporal_address: str,
    kubeconfig: Path,
    regions_file: Path,
    control_url: str,
    state_dir: Path,
    **overrides: Any,
) -> Settings:
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "database_url": database_url,
        "temporal_address": temporal_address,
        "kubeconfig": str(kubeconfig),
        "kubesim_control_url": control_url,
        "regions_file": regions_file,
        "central_task_queue": f"meridian.central.{uuid.uuid4().hex[:8]}",
        "api_port": free_port(),
        "status_backstop_seconds": 10.0,
        "failover": FailoverSettings(
            region_grace_seconds=4.0,
            health_interval_seconds=1.0,
            unschedulable_seconds=8.0,
            resident_heartbeat_timeout_seconds=3.0,
        ),
        "sweeps": SweepSettings(
            running_task_interval_seconds=5.0,
            job_interval_seconds=5.0,
            unstarted_after_seconds=1.0,
        ),
    }
    values.update(overrides)
    return Settings(**values)


class Engine:
    """Central worker + unit workers + API, started and stopped as one."""

    def __init__(self, settings: Settings, client: Client):
        self.settings = settings
        self.client = client
        self.store = Store.from_settings(settings)
        self.regions = load_regions(settings.regions_file)
        self._stack = AsyncExitStack()
        self._unit_stop = asyncio.Event()
        self._unit_task: asyncio.Task[None] | None = None
        self._server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=64)
        self.base_url = f"http://127.0.0.1:{settings.api_port}"
        self.http = httpx.AsyncClient(
            base_url=self.base_url, timeout=30.0, headers=token_headers(settings.state_dir)
        )

    async def start(self) -> Engine:
        self.store.migrate()
        for worker in build_central_workers(
            self.client, self.settings, self.store, self.regions, self._executor
        ):
            await self._stack.enter_async_context(worker)
        await ensure_region_monitor(self.client, self.settings, self.regions)
        await ensure_sweep_schedules(self.client, self.settings)
        await ensure_region_control(self.client, self.settings, self.regions)  # scaling loop
        await self.start_units()
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.settings.api_port,
            log_level="warning",
            timeout_keep_alive=self.settings.api_keep_alive_seconds,
        )
        self._server = uvicorn.Server(config)
        self._server_task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            try:
                if (await self.http.get("/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        await self.wait_regions_up()
        return self

    async def start_units(self, regions: list[str] | None = None) -> None:
        self._unit_stop = asyncio.Event()
        self._unit_task = asyncio.create_task(
            run_units(self.settings, regions or self.regions.names, self._unit_stop)
        )

    async def stop_units(self) -> None:
        self._unit_stop.set()
        if self._unit_task is not None:
            # Generous: a Temporal worker's shutdown waits for its running sync activities
            # (they cannot be interrupted), and under a heavily loaded machine that once
            # took longer than 30 s; a timeout here leaves pollers running into the next
            # module's tests.
            try:
                await asyncio.wait_for(self._unit_task, timeout=90)
            except asyncio.CancelledError:
                # At the session's end the event loop may have cancelled the unit task
                # before this finalizer runs (seen once after the whole suite): it is
                # stopped either way. Our own cancellation still propagates.
                if not self._unit_task.cancelled():
                    raise
            self._unit_task = None

    async def wait_regions_up(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            states = self.store.get_region_states()
            if all(
                states.get(n) is not None and states[n].state == "up" for n in self.regions.names
            ):
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"regions not up: {self.store.get_region_states()}")

    async def stop(self) -> None:
        await self.http.aclose()
        if self._server is not None:
            self._server.should_exit = True
            if self._server_task is not None:
                await self._server_task
        await self.stop_units()
        await self._stack.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    # -- helpers for tests ---------------------------------------------------------------

    async def submit(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await self.http.post("/v1/tasks", json=body, **kwargs)

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/tasks/{task_id}")
        response.raise_for_status()
        return dict(response.json())

    async def wait_status(
        self, task_id: str, *statuses: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        task: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            task = await self.task(task_id)
            if task["status"] in statuses:
                return task
            await asyncio.sleep(0.2)
        raise AssertionError(f"{task_id} not {statuses} after {timeout}s: {task}")


def task_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "etl",
        "business_unit": "ads",
        "kind": "batch",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {
            "image": "busybox",
            "command": ["sh", "-c", "echo hi"],
            "resources": {"cpu": "500m", "memory": "256Mi"},
            "annotations": {"kubesim.io/duration": "1s"},
        },
        "retry": {"max_attempts": 2, "backoff_seconds": 0.5},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body
