"""The workers' health endpoint: what the kubelet's probes ask a `meridian worker`.

GET /healthz  200 while the event loop answers (liveness: a wedged loop fails it).
GET /readyz   200 when every check answers "ok", else 503 with the checks (readiness):
              the worker is running and its Temporal service answers.

The API has its own (api/routes/health.py); the workers serve no HTTP otherwise, so this
is a few lines of aiohttp rather than a framework.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from meridian.settings import Settings

log = logging.getLogger(__name__)

ReadyChecks = Callable[[], Awaitable[dict[str, str]]]


class HealthServer:
    def __init__(
        self,
        checks: ReadyChecks,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - the kubelet probes the pod's IP
        port: int,
        check_timeout: float = 4.0,
    ):
        self.checks = checks
        self.host = host
        self.port = port
        # Below the probes' timeoutSeconds (5 s): a slow dependency reads as "not ready",
        # not as a probe timeout.
        self.check_timeout = check_timeout
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; the port bound (the one asked for, or a free one for port 0)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server: Any = site._server  # aiohttp keeps the asyncio server private
        return int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        try:
            checks = await asyncio.wait_for(self.checks(), timeout=self.check_timeout)
        except TimeoutError:
            checks = {"readiness": "error: no answer in time"}
        except Exception as exc:  # noqa: BLE001 - reported as not ready, never raised
            checks = {"readiness": f"error: {type(exc).__name__}"}
        ok = all(value == "ok" for value in checks.values())
        return web.json_response(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status=200 if ok else 503,
        )


def worker_checks(settings: Settings, worker: asyncio.Task[Any]) -> ReadyChecks:
    """Ready: the worker's run is alive and Temporal answers a health check. The probe's
    own client, connected on first use: the worker's is not reachable from here."""
    from temporalio.client import Client

    from meridian.temporal import connect

    client: Client | None = None

    async def checks() -> dict[str, str]:
        nonlocal client
        result = {"worker": "stopped" if worker.done() else "ok"}
        try:
            if client is None:
                client = await connect(settings, attempts=1)
            await asyncio.wait_for(client.service_client.check_health(), timeout=3)
            result["temporal"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported as not ready, never raised
            result["temporal"] = f"error: {type(exc).__name__}"
        return result

    return checks


async def start_worker_health(settings: Settings, worker: asyncio.Task[Any]) -> HealthServer | None:
    """Serve the worker's health on `settings.worker_health_port`; None when it is 0."""
    if not settings.worker_health_port:
        return None
    server = HealthServer(worker_checks(settings, worker), port=settings.worker_health_port)
    port = await server.start()
    log.info("worker health on :%d (/healthz, /readyz)", port)
    return server
