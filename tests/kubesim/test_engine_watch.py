"""The engine's JobWatcher against kubesim: an outage cuts its watch and it says so at
once (the unit worker turns that into a "probe this region now" for the monitor)."""

from __future__ import annotations

import asyncio
import time

from kubesim.control import KubesimControl
from kubesim.process import KubesimProcess
from meridian.channels.watch import JobWatcher
from meridian.kube.clients import ClusterClients
from meridian.kube.errors import KubeError
from meridian.kube.gateway import JobGateway

from .conftest import FAULTS, wait_for


async def test_outage_reports_the_failed_watch_at_once(
    kubesim: KubesimProcess, control: KubesimControl
) -> None:
    clients = ClusterClients(kubesim.kubeconfig)
    errors: list[tuple[str, KubeError, float]] = []

    async def on_error(region: str, error: KubeError) -> None:
        errors.append((region, error, time.monotonic()))

    async def report(_: object) -> None:
        return None

    watcher = JobWatcher(
        region=FAULTS,
        gateway=JobGateway(clients),
        namespace="default",
        report=report,
        on_error=on_error,
    )
    stop = asyncio.Event()
    before = control.region(FAULTS)["watches"]
    task = asyncio.create_task(watcher.run(stop))
    try:
        await asyncio.to_thread(wait_for, lambda: control.region(FAULTS)["watches"] > before)
        assert errors == []  # a healthy watch reports nothing
        cut_at = time.monotonic()
        control.outage(FAULTS)
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.05)
        assert errors, "the cut watch was not reported"
        region, _error, at = errors[0]
        assert region == FAULTS
        # The watch stream is cut, not timed out: the report comes well inside a tick.
        assert at - cut_at < 5.0
    finally:
        control.restore(FAULTS)
        stop.set()
        await asyncio.wait_for(task, timeout=20)
        clients.close()
